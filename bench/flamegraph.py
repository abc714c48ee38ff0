#!/usr/bin/env python3
"""bench/flamegraph.py -- fold `perf script` stacks and draw a flame graph.

    perf script -i perf.data | python3 bench/flamegraph.py OUT.svg [TITLE]

Writes OUT.svg (a flame graph: one box per frame, as wide as the share of
samples it was on the stack, callers below callees; hover for names and
shares) and OUT.folded (one line per stack, "comm;caller;...;callee N", the
format other flame graph tools read), and prints the 15 functions with the
most samples of their own.  Python 3 standard library only."""

import collections
import html
import sys


def fold(lines):
    """Stacks of `perf script` (a header line, then one frame a line,
    innermost first, a blank line after) -> Counter of root-first tuples."""
    stacks = collections.Counter()
    comm, frames = None, []
    for ln in lines:
        ln = ln.rstrip("\n")
        if not ln.strip():
            if comm is not None:
                stacks[tuple([comm] + frames[::-1])] += 1
            comm, frames = None, []
        elif not ln[0].isspace():
            comm = ln.split()[0]
        else:
            parts = ln.split(None, 1)
            sym = parts[1] if len(parts) > 1 else "?"
            sym = sym.split(" (")[0]
            sym = sym.split("+0x")[0] or "[unknown]"
            frames.append(sym)
    if comm is not None:
        stacks[tuple([comm] + frames[::-1])] += 1
    return stacks


def tree(stacks):
    root = {"n": 0, "kids": {}}
    for stack, n in stacks.items():
        node = root
        root["n"] += n
        for f in stack:
            node = node["kids"].setdefault(f, {"n": 0, "kids": {}})
            node["n"] += n
    return root


def svg(root, title, width=1200, row=16):
    total = max(root["n"], 1)
    boxes = []

    def walk(node, x, depth):
        for name, kid in sorted(node["kids"].items()):
            w = kid["n"] / total * width
            if w >= 0.3:
                boxes.append((x, depth, w, name, kid["n"]))
                walk(kid, x, depth + 1)
            x += w
    walk(root, 0.0, 0)
    depth = max((b[1] for b in boxes), default=0) + 1
    height = depth * row + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="monospace" font-size="11">' % (width, height),
           '<text x="4" y="16" font-size="14">%s (%d samples)</text>'
           % (html.escape(title), total)]
    for x, d, w, name, n in boxes:
        y = height - (d + 1) * row
        hue = (hash(name) % 60) + 10
        label = html.escape(name)
        out.append('<g><title>%s: %d samples, %.1f%%</title>'
                   '<rect x="%.1f" y="%d" width="%.1f" height="%d" '
                   'fill="hsl(%d,80%%,60%%)" stroke="white" stroke-width="0.5"/>'
                   % (label, n, 100.0 * n / total, x, y, w, row - 1, hue))
        if w > 40:
            out.append('<text x="%.1f" y="%d">%s</text>'
                       % (x + 2, y + row - 4, html.escape(name[:int(w / 7)])))
        out.append('</g>')
    out.append('</svg>')
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: perf script | flamegraph.py OUT.svg [TITLE]")
    out = sys.argv[1]
    title = sys.argv[2] if len(sys.argv) > 2 else "flame graph"
    stacks = fold(sys.stdin)
    with open(out.rsplit(".", 1)[0] + ".folded", "w") as f:
        for stack, n in sorted(stacks.items()):
            f.write("%s %d\n" % (";".join(stack), n))
    with open(out, "w") as f:
        f.write(svg(tree(stacks), title))
    own = collections.Counter()
    for stack, n in stacks.items():
        own[stack[-1]] += n
    total = max(sum(stacks.values()), 1)
    for name, n in own.most_common(15):
        print("%6.1f%%  %s" % (100.0 * n / total, name))


if __name__ == "__main__":
    main()
