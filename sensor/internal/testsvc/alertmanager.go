package testsvc

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// AlertmanagerBinary is where Debian's prometheus-alertmanager package
// installs Alertmanager.
const AlertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// AlertmanagerOptions configure the Alertmanager StartAlertmanager runs.
type AlertmanagerOptions struct {
	// WebConfig, when not empty, is the content of its --web.config.file
	// (TLS, basic auth); it is then served over HTTPS.
	WebConfig string
	// Client asks whether it is ready (with the CA of WebConfig's
	// certificate, say); nil is http.DefaultClient.
	Client *http.Client
	// User and Password, when User is not empty, are sent as basic auth
	// with the readiness probe.
	User, Password string
}

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	URL string // http://127.0.0.1:PORT or https://…

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartAlertmanager runs the real Alertmanager on a free loopback port,
// with a null receiver and no clustering, and waits up to 15 seconds
// until /-/ready answers 200. It skips the test when Alertmanager is not
// installed, fails it when Alertmanager exits or is not ready, and kills
// it when the test ends.
func StartAlertmanager(t testing.TB, opts AlertmanagerOptions) *Alertmanager {
	t.Helper()
	if _, err := os.Stat(AlertmanagerBinary); err != nil {
		t.Skipf("Alertmanager not installed (%s: %v): apt-get install prometheus-alertmanager", AlertmanagerBinary, err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	args := []string{"--config.file=" + cfg, "--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=warn"}
	scheme := "http"
	if opts.WebConfig != "" {
		wc := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(wc, []byte(opts.WebConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+wc)
		scheme = "https"
	}
	cmd := exec.Command(AlertmanagerBinary, args...)
	logs := &Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{URL: scheme + "://" + addr, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(am.exited) }()
	t.Cleanup(am.Kill)
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, am.URL+"/-/ready", nil)
		if opts.User != "" {
			req.SetBasicAuth(opts.User, opts.Password)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am
			}
		}
		select {
		case <-am.exited:
			t.Fatalf("alertmanager exited: %s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready after 15s (%v): %s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill kills Alertmanager and waits until it has exited: the test can see
// what a sink does with Alertmanager down.
func (am *Alertmanager) Kill() {
	am.cmd.Process.Kill()
	<-am.exited
}
