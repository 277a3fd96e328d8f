package syslog

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// receiver is a real rsyslogd writing every message it gets, raw, as one
// line of a file.
type receiver struct {
	t      *testing.T
	dir    string
	out    string
	cfg    rsyslogConfig
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	starts int
}

type rsyslogConfig struct {
	udpPort, tcpPort int
	tls              *tlsFiles // the TCP input speaks TLS (gtls driver), with client certificates required
}

type tlsFiles struct{ ca, cert, key, clientCert, clientKey string }

// needRsyslog skips the test when rsyslogd is not installed.
func needRsyslog(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		t.Skip("rsyslogd not installed (Debian package rsyslog): no real receiver to test against")
	}
}

// newReceiver starts rsyslogd with its own configuration, work directory
// and output file in a temporary directory, and waits until it listens.
func newReceiver(t *testing.T, cfg rsyslogConfig) *receiver {
	t.Helper()
	needRsyslog(t)
	r := &receiver{t: t, dir: t.TempDir(), cfg: cfg}
	r.out = filepath.Join(r.dir, "out.log")
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) start() {
	t := r.t
	t.Helper()
	r.starts++
	var conf strings.Builder
	global := fmt.Sprintf(`workDirectory=%q maxMessageSize="256k"`, r.dir)
	if f := r.cfg.tls; f != nil {
		global += fmt.Sprintf(` defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q`, f.ca, f.cert, f.key)
	}
	fmt.Fprintf(&conf, "global(%s)\n", global)
	if r.cfg.udpPort != 0 {
		conf.WriteString("module(load=\"imudp\")\n")
		fmt.Fprintf(&conf, "input(type=\"imudp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"out\")\n", r.cfg.udpPort)
	}
	if r.cfg.tcpPort != 0 {
		if r.cfg.tls != nil {
			conf.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"x509/certvalid\")\n")
		} else {
			conf.WriteString("module(load=\"imtcp\")\n")
		}
		fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"out\")\n", r.cfg.tcpPort)
	}
	conf.WriteString("template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n")
	fmt.Fprintf(&conf, "ruleset(name=\"out\") { action(type=\"omfile\" file=%q template=\"raw\") }\n", r.out)
	confPath := filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(r.dir, "rsyslogd."+strconv.Itoa(r.starts)+".pid")
	r.stderr = &syncBuffer{}
	r.cmd = exec.Command("rsyslogd", "-n", "-f", confPath, "-i", pid)
	r.cmd.Stdout, r.cmd.Stderr = r.stderr, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { r.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ready := (r.cfg.udpPort == 0 || listening("udp", r.cfg.udpPort)) && (r.cfg.tcpPort == 0 || listening("tcp", r.cfg.tcpPort))
		if ready {
			break
		}
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited: %s\nconfig:\n%s", r.stderr, conf.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd does not listen after 5s: %s", r.stderr)
		}
	}
	r.exited = exited
}

// stop ends rsyslogd (it flushes its output file on SIGTERM).
func (r *receiver) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGCONT) // in case a test stopped it
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

// lines waits until the output file holds n lines and returns them.
func (r *receiver) lines(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(r.out)
		if err != nil && !os.IsNotExist(err) {
			r.t.Fatal(err)
		}
		got := strings.Count(string(b), "\n")
		if got >= n || time.Now().After(deadline) {
			if got != n {
				r.t.Fatalf("rsyslogd wrote %d lines, want %d:\n%s\nrsyslogd: %s", got, n, b, r.stderr)
			}
			return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listening tells whether something listens on the loopback port, by
// /proc/net (a probe connection would be a message to rsyslogd).
func listening(network string, port int) bool {
	want := fmt.Sprintf("0100007F:%04X", port)
	b, err := os.ReadFile("/proc/net/" + network)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && (network == "udp" || f[3] == "0A") {
			return true
		}
	}
	return false
}

// freePort returns a loopback port nobody uses at the moment.
func freePort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// syncBuffer collects rsyslogd's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeCerts makes a CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, as PEM files in dir.
func writeCerts(t *testing.T, dir string) *tlsFiles {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "phonehome test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	f := &tlsFiles{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, f.ca, "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", kder)
		return certFile, keyFile
	}
	f.cert, f.key = leaf(2, "localhost", x509.ExtKeyUsageServerAuth)
	f.clientCert, f.clientKey = leaf(3, "sensor", x509.ExtKeyUsageClientAuth)
	return f
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ctx is a test context that ends before the test's timeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
