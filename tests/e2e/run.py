#!/usr/bin/env python3
"""wxapp end-to-end test runner (Python 3 stdlib only).

Discovers every tests/e2e/test_*.py module (unittest TestCase classes), runs
them against nginx at $WXAPP_TEST_URL and prints one line per test:

    ok  test_foundation.Ping.test_get
    FAIL test_foundation.Ping.test_head: reason
    skip test_resilience.Outage.test_redis: reason

and finally exactly one summary line `N passed, N failed[, N skipped]`.
Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.

    python3 tests/e2e/run.py [-k SUBSTRING]... [-v] [--list]

-k selects tests whose name contains SUBSTRING (repeatable: any matches).
-v prints tracebacks for failures and diagnostics on stderr.
"""

import argparse
import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# Keep the checkout clean (no __pycache__ under tests/e2e).
sys.dont_write_bytecode = True


def test_name(test):
    tid = test.id()
    if tid.startswith("unittest.loader._FailedTest."):
        return "import " + tid.rsplit(".", 1)[1]
    return tid


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


def one_line(text, limit=1000):
    text = " | ".join(s.strip() for s in str(text).strip().splitlines() if s.strip())
    return text if len(text) <= limit else text[:limit] + "..."


class LineResult(unittest.TestResult):
    """Prints one line per test as soon as it finishes."""

    def __init__(self, verbose=False):
        super().__init__()
        self.verbose = verbose
        self.passed = 0
        self.failed_names = []
        self.skipped_n = 0
        self._sub_failed = set()
        self._t0 = {}

    def _out(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def _timing(self, test):
        t0 = self._t0.pop(id(test), None)
        return "" if t0 is None or not self.verbose else "  (%.1fs)" % (time.monotonic() - t0)

    def startTest(self, test):
        super().startTest(test)
        self._t0[id(test)] = time.monotonic()

    def _fail(self, test, err, is_error, sub=None):
        name = test_name(test if sub is None else sub.test_case)
        if sub is not None:
            name += " " + sub._subDescription()
        etype, value, tb = err
        if is_error:
            reason = "%s: %s" % (etype.__name__, value)
        else:
            reason = str(value)
        self._out("FAIL %s: %s%s" % (name, one_line(reason), self._timing(test)))
        if self.verbose:
            sys.stderr.write("".join(traceback.format_exception(etype, value, tb)))
            sys.stderr.flush()
        base = test_name(test if sub is None else sub.test_case)
        if base not in self.failed_names:
            self.failed_names.append(base)

    def addSuccess(self, test):
        super().addSuccess(test)
        if test_name(test) in self._sub_failed:
            return
        self.passed += 1
        self._out("ok  %s%s" % (test_name(test), self._timing(test)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, False)

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, True)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._sub_failed.add(test_name(test))
            is_error = not issubclass(err[0], test.failureException)
            self._fail(test, err, is_error, sub=subtest)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.skipped_n += 1
        self._out("skip %s: %s" % (test_name(test), one_line(reason)))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1
        self._out("ok  %s (expected failure)" % test_name(test))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._out("FAIL %s: unexpected success" % test_name(test))
        self.failed_names.append(test_name(test))


def main(argv=None):
    ap = argparse.ArgumentParser(description="wxapp end-to-end tests")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                    help="run only tests whose name contains SUBSTRING (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="tracebacks and diagnostics on stderr")
    ap.add_argument("--list", action="store_true", help="list test names and exit")
    args = ap.parse_args(argv)

    if args.verbose:
        os.environ["WXAPP_TEST_VERBOSE"] = "1"
    sys.path.insert(0, HERE)

    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(flatten(suite))
    if args.k:
        tests = [t for t in tests if any(k in test_name(t) for k in args.k)]

    if args.list:
        for t in tests:
            print(test_name(t))
        return 0

    import e2elib
    result = LineResult(verbose=args.verbose)
    t0 = time.monotonic()
    if tests:
        ok, why = e2elib.reachable()
        if not ok:
            result._out("FAIL preflight: cannot connect to %s (%s); is the stack up?"
                        % (e2elib.BASE_URL, why))
            result._out("0 passed, 1 failed")
            return 1
        if args.verbose:
            sys.stderr.write("e2e: %d tests against %s (run dir %r)\n"
                             % (len(tests), e2elib.BASE_URL, e2elib.RUN_DIR))
        unittest.TestSuite(tests).run(result)
    if args.verbose:
        sys.stderr.write("e2e: %.1fs\n" % (time.monotonic() - t0))
        sys.stderr.flush()

    failed = len(result.failed_names)
    summary = "%d passed, %d failed" % (result.passed, failed)
    if result.skipped_n:
        summary += ", %d skipped" % result.skipped_n
    sys.stdout.write(summary + "\n")
    sys.stdout.flush()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
