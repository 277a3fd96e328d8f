package testsvc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RsyslogSkip is the message of the tests NeedRsyslog skips.
const RsyslogSkip = "rsyslogd not installed (Debian package rsyslog): no real receiver to test against"

// HaveRsyslog tells whether rsyslogd is installed, for a test that does
// without it rather than skip.
func HaveRsyslog() bool {
	_, err := exec.LookPath("rsyslogd")
	return err == nil
}

// NeedRsyslog skips the test when rsyslogd is not installed.
func NeedRsyslog(t testing.TB) {
	t.Helper()
	Program(t, "rsyslogd", RsyslogSkip)
}

// RsyslogOptions are the inputs of a receiver StartRsyslog starts.
type RsyslogOptions struct {
	// UDPPort and TCPPort are the loopback ports of its UDP and TCP
	// inputs; 0 is no such input. They are the caller's (FreePort), so
	// that a test can send before the receiver is up, or restart it.
	UDPPort, TCPPort int
	// TLS, when not nil, makes the TCP input speak TLS (rsyslog's gtls
	// driver) with this CA and server certificate, and require a client
	// certificate the CA signed.
	TLS *CertFiles
}

// Rsyslog is a real rsyslogd writing every message it gets, raw
// (%rawmsg%), as one line of a file per input.
type Rsyslog struct {
	RsyslogOptions
	Dir              string // its configuration, work directory and files
	UDPFile, TCPFile string // what came over UDP and over TCP (or TLS)

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *Buffer
	starts int
}

// StartRsyslog starts rsyslogd with its own configuration, work
// directory and output files in a temporary directory, and waits up to 5
// seconds until it listens on every port of opts. It skips the test when
// rsyslogd is not installed, fails it when rsyslogd exits or does not
// listen, and stops rsyslogd when the test ends.
func StartRsyslog(t testing.TB, opts RsyslogOptions) *Rsyslog {
	t.Helper()
	NeedRsyslog(t)
	dir := t.TempDir()
	r := &Rsyslog{RsyslogOptions: opts, Dir: dir, UDPFile: filepath.Join(dir, "udp.log"), TCPFile: filepath.Join(dir, "tcp.log")}
	t.Cleanup(r.Stop)
	r.Start(t)
	return r
}

// Start starts rsyslogd again after Stop, on the same ports and files.
func (r *Rsyslog) Start(t testing.TB) {
	t.Helper()
	r.starts++
	conf := r.config()
	confPath := filepath.Join(r.Dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	pid := filepath.Join(r.Dir, "rsyslogd."+strconv.Itoa(r.starts)+".pid")
	r.logs = &Buffer{}
	cmd := exec.Command("rsyslogd", "-n", "-f", confPath, "-i", pid)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.cmd, r.exited = cmd, exited
	deadline := time.Now().Add(5 * time.Second)
	for (r.UDPPort != 0 && !listening("udp", r.UDPPort)) || (r.TCPPort != 0 && !listening("tcp", r.TCPPort)) {
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited: %s\nconfig:\n%s", r.logs, conf)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd does not listen after 5s: %s", r.logs)
		}
	}
}

func (r *Rsyslog) config() string {
	var conf strings.Builder
	global := fmt.Sprintf(`workDirectory=%q maxMessageSize="256k"`, r.Dir)
	if f := r.TLS; f != nil {
		global += fmt.Sprintf(` defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q`, f.CA, f.Cert, f.Key)
	}
	fmt.Fprintf(&conf, "global(%s)\n", global)
	conf.WriteString("template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n")
	if r.UDPPort != 0 {
		conf.WriteString("module(load=\"imudp\")\n")
		fmt.Fprintf(&conf, "input(type=\"imudp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"udp\")\n", r.UDPPort)
		fmt.Fprintf(&conf, "ruleset(name=\"udp\") { action(type=\"omfile\" file=%q template=\"raw\") }\n", r.UDPFile)
	}
	if r.TCPPort != 0 {
		if r.TLS != nil {
			conf.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"x509/certvalid\")\n")
		} else {
			conf.WriteString("module(load=\"imtcp\")\n")
		}
		fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"tcp\")\n", r.TCPPort)
		fmt.Fprintf(&conf, "ruleset(name=\"tcp\") { action(type=\"omfile\" file=%q template=\"raw\") }\n", r.TCPFile)
	}
	return conf.String()
}

// Stop ends rsyslogd, which flushes its files on SIGTERM (after SIGCONT,
// in case the test stopped it); after 5 seconds it is killed. Stopping a
// stopped receiver does nothing.
func (r *Rsyslog) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGCONT)
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

// Signal sends sig to the running rsyslogd (SIGSTOP: a receiver that
// stops reading).
func (r *Rsyslog) Signal(sig os.Signal) error {
	if r.cmd == nil {
		return errors.New("rsyslogd is not running")
	}
	return r.cmd.Process.Signal(sig)
}

// Log returns what rsyslogd wrote to stdout and stderr since it was last
// started.
func (r *Rsyslog) Log() string {
	return r.logs.String()
}

// Lines waits up to 5 seconds until file (UDPFile or TCPFile) holds at
// least n lines, rsyslogd writing asynchronously; when it holds exactly n
// and settle is not 0, it waits settle more for any line after them (a
// duplicate). It returns the complete lines (nil for none) and all the
// file holds, for the caller to compare with n.
func (r *Rsyslog) Lines(t testing.TB, file string, n int, settle time.Duration) (lines []string, content string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(file)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		got := strings.Count(string(b), "\n")
		if got >= n || time.Now().After(deadline) {
			if got == n && settle > 0 {
				time.Sleep(settle)
				b, _ = os.ReadFile(file)
				got = strings.Count(string(b), "\n")
			}
			if got == 0 {
				return nil, string(b)
			}
			s := string(b)
			return strings.Split(s[:strings.LastIndexByte(s, '\n')], "\n"), s
		}
		time.Sleep(10 * time.Millisecond)
	}
}
