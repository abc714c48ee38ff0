// gin: the cached read as a Go/Gin service would ship it, for bench/run gin
// (issue 17, part 2: wxapp's tail latency against Gin's on the same runs).
//
// A minimal Gin server in release mode: gin.New() with a logger writing
// one access line per request to a file and gin.Recovery() -- wxapp writes
// an access line per request too (wxapp.conf access_log), so both pay for
// one.  It answers GET /api/v1/data/list with the bytes of one fixed answer
// loaded at start from the file given with -c, the file bench/run captures
// from wxapp for the floor (bench/floor.c reads the same one):
//
//	RateLimit-Limit: ...		the app's header lines after
//	ETag: "..."			X-Request-Id (CRLF or LF)
//	...
//					an empty line
//	{"code":0,...}			the body (the rest of the file)
//
// as 200 with Content-Type, Content-Length, X-Request-Id (24 hex digits,
// like wxapp's generated ids), the header lines (spelled as the app spells
// them) and the body; a request whose If-None-Match is that ETag gets the
// 304 with X-Request-Id and the header lines.  Behind nginx
// (bench/run renders a server block like the stack's, TLS and all, that
// proxies to it over kept HTTP/1.1 connections), or over plain HTTP.
//
// GET /_gin/conns answers the number of connections accepted so far (how
// often nginx connected rather than reusing a kept connection).
//
// Built in GOPATH mode against Debian's golang-github-gin-gonic-gin-dev:
//
//	GO111MODULE=off GOPATH=/tmp/x:/usr/share/gocode go build -o gin gin.go
//
// usage: gin [-listen 127.0.0.1:18661] [-log access.log] -c ANSWER_FILE
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
)

type header struct {
	name, value string
}

var (
	body      []byte
	hdrs      []header
	etag      string
	bodyLen   string
	idPrefix  uint64
	idCounter uint32
	conns     uint64
)

// load reads the answer file: header lines, an empty line, the body.
func load(path string) error {
	f, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for len(f) > 0 {
		i := bytes.IndexByte(f, '\n')
		if i < 0 {
			return fmt.Errorf("%s: no empty line before the body", path)
		}
		line := strings.TrimSuffix(string(f[:i]), "\r")
		f = f[i+1:]
		if line == "" {
			body = f
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("%s: not a header line: %q", path, line)
		}
		value = strings.TrimLeft(value, " \t")
		if strings.EqualFold(name, "ETag") {
			etag = value
		}
		hdrs = append(hdrs, header{name, value})
	}
	if body == nil || etag == "" {
		return fmt.Errorf("%s: want header lines with an ETag, an empty line, then the body", path)
	}
	bodyLen = strconv.Itoa(len(body))
	return nil
}

// requestID: a prefix and a counter, 24 hex digits (as the floor's).
func requestID() string {
	return fmt.Sprintf("%016x%08x", idPrefix, atomic.AddUint32(&idCounter, 1))
}

func list(c *gin.Context) {
	h := c.Writer.Header()
	// The map directly: Header.Set would spell ETag "Etag".
	h["X-Request-Id"] = []string{requestID()}
	for _, x := range hdrs {
		h[x.name] = []string{x.value}
	}
	if inm := c.GetHeader("If-None-Match"); inm != "" && (inm == etag || inm == "W/"+etag) {
		c.Status(http.StatusNotModified)
		return
	}
	h["Content-Length"] = []string{bodyLen}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18661", "address to listen on")
	answer := flag.String("c", "", "the answer file (header lines, an empty line, the body)")
	logPath := flag.String("log", "", "the access log (default: standard output)")
	test := flag.Bool("t", false, "load the answer file and exit")
	flag.Parse()
	if *answer == "" {
		fmt.Fprintln(os.Stderr, "usage: gin [-t] [-listen ADDR] [-log FILE] -c ANSWER_FILE")
		os.Exit(2)
	}
	if err := load(*answer); err != nil {
		fmt.Fprintln(os.Stderr, "gin:", err)
		os.Exit(1)
	}
	if *test {
		fmt.Printf("gin: %s: %d-byte body, %d header lines, etag %s\n", *answer, len(body), len(hdrs), etag)
		return
	}
	out := os.Stdout
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0644)
		if err != nil {
			log.Fatal(err)
		}
		out = f
	}
	idPrefix = uint64(os.Getpid())<<32 ^ uint64(time.Now().Unix())

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// One access line per request, written to the file as it is made
	// (gin's default format: time, status, latency, client, method, path).
	r.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: out}), gin.Recovery())
	r.GET("/api/v1/data/list", list)
	r.GET("/_gin/conns", func(c *gin.Context) {
		c.String(http.StatusOK, "%d\n", atomic.LoadUint64(&conns))
	})

	srv := &http.Server{
		Addr:              *listen,
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				atomic.AddUint64(&conns, 1)
			}
		},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
