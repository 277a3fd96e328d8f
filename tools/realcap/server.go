package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func serverMain(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", ":8443", "address for HTTPS over TCP and HTTP/3 over UDP (empty: none)")
	httpAddr := fs.String("http", ":8080", "address for plain HTTP (empty: none)")
	retry := fs.Bool("retry", false, "make every QUIC client go through a Retry first")
	spkiOut := fs.String("spki-out", "", "write base64(SHA-256(SubjectPublicKeyInfo)) of the certificate here (for Chromium's --ignore-certificate-errors-spki-list)")
	_ = fs.Parse(args)

	cert, err := selfSigned()
	if err != nil {
		return err
	}
	if *spkiOut != "" {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return err
		}
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		if err := os.WriteFile(*spkiOut, []byte(base64.StdEncoding.EncodeToString(sum[:])+"\n"), 0o644); err != nil {
			return err
		}
	}
	logger := log.New(os.Stderr, "realcap server: ", log.Lmicroseconds)
	errc := make(chan error, 4)

	if *addr != "" {
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			logger.Printf("%s %s %s host=%q sni=%q from %s", r.Proto, r.Method, r.RequestURI, r.Host, r.TLS.ServerName, r.RemoteAddr)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if r.ProtoMajor < 2 {
				w.Header().Set("Connection", "close")
			}
			fmt.Fprintf(w, "<!doctype html><title>realcap</title><p>%s %s</p>\n", r.Proto, r.TLS.ServerName)
		})

		// HTTPS over TCP: crypto/tls with net/http's defaults (ALPN h2, http/1.1).
		tln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		hs := &http.Server{
			Handler:     handler,
			TLSConfig:   &tls.Config{Certificates: []tls.Certificate{cert}},
			ErrorLog:    logger,
			IdleTimeout: 2 * time.Second,
		}
		go func() { errc <- hs.ServeTLS(tln, "", "") }()

		// HTTP/3 over UDP on the same port.
		udpAddr, err := net.ResolveUDPAddr("udp", *addr)
		if err != nil {
			return err
		}
		uc, err := net.ListenUDP("udp", udpAddr)
		if err != nil {
			return err
		}
		tr := &quic.Transport{Conn: uc}
		if *retry {
			tr.VerifySourceAddress = func(net.Addr) bool { return true }
		}
		qln, err := tr.ListenEarly(http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
			&quic.Config{MaxIdleTimeout: 3 * time.Second})
		if err != nil {
			return err
		}
		h3 := &http3.Server{Handler: handler}
		go func() { errc <- h3.ServeListener(qln) }()
		logger.Printf("HTTPS on tcp %s, HTTP/3 on udp %s (retry=%v)", tln.Addr(), uc.LocalAddr(), *retry)
	}

	if *httpAddr != "" {
		hln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return err
		}
		ps := &http.Server{Handler: http.HandlerFunc(plainHTTP(logger)), ErrorLog: logger, IdleTimeout: 2 * time.Second}
		go func() { errc <- ps.Serve(hln) }()
		logger.Printf("HTTP on tcp %s", hln.Addr())
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		logger.Printf("%v, exiting", s)
		return nil
	case err := <-errc:
		return err
	}
}

// plainHTTP answers origin-form and absolute-form requests with a short
// body and CONNECT with 200, after which it reads whatever comes through
// the tunnel (a TLS ClientHello, normally) for up to two seconds.
func plainHTTP(logger *log.Logger) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		logger.Printf("%s %s %s host=%q ua=%q from %s", r.Proto, r.Method, r.RequestURI, r.Host, r.UserAgent(), r.RemoteAddr)
		if r.Method != http.MethodConnect {
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "ok %s %s\n", r.Method, r.RequestURI)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		c, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		_ = brw.Flush()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.Copy(io.Discard, bufio.NewReader(brw))
		logger.Printf("CONNECT %s: %d bytes through the tunnel, closing", r.RequestURI, n)
	}
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "realcap.phonehome.example"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"phonehome.example", "*.phonehome.example"},
		IPAddresses:           []net.IP{net.ParseIP("10.99.0.2"), net.ParseIP("fd99::2")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if len(der) == 0 {
		return tls.Certificate{}, errors.New("empty certificate")
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
