package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func clientMain(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	mode := fs.String("mode", "tls", "tls (crypto/tls over TCP) or h3 (quic-go HTTP/3)")
	sni := fs.String("sni", "", "server name to send (SNI, Host)")
	addr := fs.String("addr", "10.99.0.2:8443", "address to dial")
	alpn := fs.String("alpn", "", "comma-separated ALPN list (mode tls; empty: no ALPN extension, Go's default)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	_ = fs.Parse(args)
	if *sni == "" {
		return errors.New("client: -sni is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch *mode {
	case "tls":
		return tlsClient(ctx, *sni, *addr, *alpn)
	case "h3":
		return h3Client(ctx, *sni, *addr)
	}
	return fmt.Errorf("client: unknown mode %q", *mode)
}

func tlsClient(ctx context.Context, sni, addr, alpn string) error {
	// Go's defaults on purpose: no CurvePreferences, no MinVersion, no
	// cipher suites; Go 1.24+ then offers X25519MLKEM768 first.
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	if alpn != "" {
		cfg.NextProtos = strings.Split(alpn, ",")
	}
	d := &tls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	c := nc.(*tls.Conn)
	defer c.Close()
	st := c.ConnectionState()
	fmt.Fprintf(os.Stderr, "realcap client: %s %s alpn=%q group=%s\n",
		tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol, st.CurveID)
	if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		return nil // the handshake is what we want; do not speak h2
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: realcap/1 (Go crypto/tls)\r\nConnection: close\r\n\r\n", sni)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	fmt.Fprintf(os.Stderr, "realcap client: %s\n", resp.Status)
	return nil
}

func h3Client(ctx context.Context, sni, addr string) error {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, InsecureSkipVerify: true},
		QUICConfig:      &quic.Config{MaxIdleTimeout: 3 * time.Second},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		},
	}
	defer tr.Close()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(sni, port)+"/", nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "realcap/1 (quic-go)")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	fmt.Fprintf(os.Stderr, "realcap client: %s %s\n", resp.Proto, resp.Status)
	return nil
}
