package testcap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ClientHello returns the first flight crypto/tls sends for serverName with
// the default client configuration and the given ALPN protocols: one TLS
// handshake record (type 0x16) holding the ClientHello. With Go's default
// key shares (a post-quantum hybrid among them) the record is about 1.5 KB,
// more than one 1460-byte segment; cut it with Segments to send it as a
// browser would, or use ClientHelloConfig with classical CurvePreferences
// for a hello that fits in one segment. An empty serverName gives a hello
// without SNI, as does an IP literal.
func ClientHello(serverName string, alpn ...string) ([]byte, error) {
	return ClientHelloConfig(&tls.Config{ServerName: serverName, NextProtos: alpn})
}

// ClientHelloConfig is ClientHello for a caller's client configuration (it
// is cloned, not modified). The handshake runs against a connection that
// records the first write and then reads end of file, as if the server had
// closed without answering; nothing touches the network.
func ClientHelloConfig(cfg *tls.Config) ([]byte, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		// crypto/tls refuses to start without a name to verify; the
		// handshake never gets as far as verifying anything.
		cfg.InsecureSkipVerify = true
	}
	conn := &captureConn{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := tls.Client(conn, cfg).HandshakeContext(ctx)
	if conn.first == nil {
		if err == nil {
			err = errors.New("handshake wrote nothing")
		}
		return nil, fmt.Errorf("testcap: ClientHello: %w", err)
	}
	return conn.first, nil
}

// captureConn is the client end of a connection whose server end reads the
// first flight and closes: the first Write is recorded, later writes fail,
// reads return io.EOF.
type captureConn struct {
	first []byte
}

var errCaptured = errors.New("testcap: first flight captured")

func (c *captureConn) Write(p []byte) (int, error) {
	if c.first != nil {
		return 0, errCaptured
	}
	c.first = append([]byte(nil), p...)
	return len(p), nil
}

func (c *captureConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *captureConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetReadDeadline(time.Time) error  { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// HTTPRequest returns an HTTP/1.1 request head: the request line, Host,
// User-Agent (left out when userAgent is empty), Accept: */* and
// Connection: close, ending with the blank line. An empty method means GET,
// an empty target "/". Every argument is written verbatim, control bytes
// included, so hostile values can be tested.
func HTTPRequest(method, host, target, userAgent string) []byte {
	if method == "" {
		method = "GET"
	}
	if target == "" {
		target = "/"
	}
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\n")
	b.WriteString("Host: " + host + "\r\n")
	if userAgent != "" {
		b.WriteString("User-Agent: " + userAgent + "\r\n")
	}
	b.WriteString("Accept: */*\r\nConnection: close\r\n\r\n")
	return []byte(b.String())
}

// HTTPResponse returns a complete HTTP/1.1 response with the given status,
// Content-Type (left out when empty) and body, with Content-Length and
// Connection: close.
func HTTPResponse(status int, contentType, body string) []byte {
	var b strings.Builder
	text := http.StatusText(status)
	if text == "" {
		text = "Status"
	}
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + text + "\r\n")
	if contentType != "" {
		b.WriteString("Content-Type: " + contentType + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n")
	b.WriteString(body)
	return []byte(b.String())
}
