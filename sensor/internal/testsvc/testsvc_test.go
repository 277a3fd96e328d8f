package testsvc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFreePort(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		p := FreePort(t, network)
		if p <= 0 || p > 65535 {
			t.Fatalf("FreePort(%s) = %d", network, p)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if network == "udp" {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				t.Fatalf("FreePort(udp) = %d, not free: %v", p, err)
			}
			c.Close()
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreePort(tcp) = %d, not free: %v", p, err)
		}
		if !listening("tcp", p) {
			t.Errorf("listening(tcp, %d) = false with a listener on it", p)
		}
		l.Close()
	}
	if a := FreeAddr(t); !strings.HasPrefix(a, "127.0.0.1:") {
		t.Errorf("FreeAddr = %q", a)
	}
}

func TestProgram(t *testing.T) {
	if p := Program(t, "go", "go not found"); p == "" {
		t.Error("Program(go) = \"\"")
	}
	var reached bool
	t.Run("missing", func(t *testing.T) {
		Program(t, "phonehome-no-such-program", "phonehome-no-such-program: not installed")
		reached = true
	})
	if reached {
		t.Error("Program did not skip the test for a program that is not installed")
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Errorf("%d bytes, want 400", n)
	}
}

// TestCerts: the server certificate verifies for its names and 127.0.0.1
// with the CA and not with another; the client certificate verifies for
// client auth.
func TestCerts(t *testing.T) {
	f := Certs(t, t.TempDir(), "kafka.test", "localhost")
	pool := f.Pool(t)
	other := Certs(t, t.TempDir())
	server := f.ServerCert(t)
	for _, name := range []string{"kafka.test", "localhost", "127.0.0.1"} {
		if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "evil.test"}); err == nil {
		t.Error("server certificate verified for evil.test")
	}
	if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: other.Pool(t), DNSName: "kafka.test"}); err == nil {
		t.Error("server certificate verified with another CA")
	}
	client, err := tls.LoadX509KeyPair(f.ClientCert, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
}

// TestRsyslog: a receiver on UDP and TCP writes what each gets to its
// file, and again after a restart.
func TestRsyslog(t *testing.T) {
	r := StartRsyslog(t, RsyslogOptions{UDPPort: FreePort(t, "udp"), TCPPort: FreePort(t, "tcp")})
	send := func(network string, port int, msg string) {
		t.Helper()
		c, err := net.Dial(network, fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	send("udp", r.UDPPort, "<13>1 - h app - - - over udp")
	send("tcp", r.TCPPort, "<13>1 - h app - - - over tcp\n")
	for _, f := range []struct{ file, want string }{{r.UDPFile, "over udp"}, {r.TCPFile, "over tcp"}} {
		lines, content := r.Lines(t, f.file, 1, 0)
		if len(lines) != 1 || !strings.HasSuffix(lines[0], f.want) {
			t.Errorf("%s: %q, want one line ending %q; rsyslogd: %s", f.file, content, f.want, r.Log())
		}
	}
	r.Stop()
	r.Start(t)
	send("tcp", r.TCPPort, "<13>1 - h app - - - again\n")
	if lines, content := r.Lines(t, r.TCPFile, 2, 0); len(lines) != 2 || !strings.HasSuffix(lines[1], "again") {
		t.Errorf("after a restart: %q; rsyslogd: %s", content, r.Log())
	}
}

func TestAlertmanager(t *testing.T) {
	am := StartAlertmanager(t, AlertmanagerOptions{})
	if !strings.HasPrefix(am.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q", am.URL)
	}
	am.Kill()
	if _, err := (&http.Client{}).Get(am.URL + "/-/ready"); err == nil {
		t.Error("Alertmanager still answers after Kill")
	}
}

func TestKafka(t *testing.T) {
	c := StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := Consume(t, brokers, 1, []string{"t"}, 10*time.Second, 100*time.Millisecond)
	if len(got) != 1 || string(got[0].Value) != "v" {
		t.Errorf("consumed %d records: %v", len(got), got)
	}
}

// TestOnlyImportedByTests: no package of the module imports testsvc
// outside its tests, so that the sensor does not link package testing or
// kfake.
func TestOnlyImportedByTests(t *testing.T) {
	goBin := Program(t, "go", "go not found")
	const self = "github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
	cmd := exec.Command(goBin, "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/phonehome-sensor/phonehome/...")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == self {
				t.Errorf("%s imports %s outside its tests", f[0], self)
			}
		}
	}
}
