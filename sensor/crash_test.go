package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory/store"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// hostsCapture writes one Kaspersky look-up from each of n hosts,
// numbered from first, one packet each.
func hostsCapture(t *testing.T, first, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := testcap.NewWriter(&buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(first)*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	resolver := testcap.NewHost("10.50.255.53", 0)
	for i := first; i < first+n; i++ {
		h := testcap.NewHost(fmt.Sprintf("10.50.%d.%d", i/250, 1+i%250), 0)
		if err := w.DNS(h, resolver, testcap.Query("dnl-01.geo.kaspersky.com", dns.TypeA, uint16(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func storedHosts(t *testing.T, db string) map[netip.Addr]inventory.Host {
	t.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hosts, err := st.Hosts(context.Background(), inventory.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[netip.Addr]inventory.Host{}
	for _, h := range hosts {
		m[h.IP] = h
	}
	return m
}

// TestCrashSafety: phonehome reads the first part of a capture from a
// pipe, flushes the hosts it saw, and is killed with SIGKILL while it
// waits for more; the store holds every host flushed and is sound; a
// run over the rest of the capture completes the inventory, each host
// counted once.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "phonehome")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const firstPart, rest = 512, 300 // 2 full batches of 256 packets, then more
	part1 := hostsCapture(t, 0, firstPart)
	part2 := hostsCapture(t, firstPart, rest)
	fifo := filepath.Join(dir, "tap.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	db := filepath.Join(dir, "inv.db")
	cmd := exec.Command(bin, "run", "-r", fifo, "--storage.path", db, "--storage.flush-interval", "100ms", "--log.level", "error")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pipe, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	if _, err := pipe.Write(part1); err != nil {
		t.Fatal(err)
	}
	// The pipe stays open: phonehome waits for more, its hosts flushed.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(db); err == nil && len(storedHosts(t, db)) == firstPart {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hosts of the first part not flushed in time; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The rest of the capture, in a new run on the same store.
	rest2 := filepath.Join(dir, "rest.pcap")
	if err := os.WriteFile(rest2, part2, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "run", "-r", rest2, "--storage.path", db, "--log.level", "error").CombinedOutput(); err != nil {
		t.Fatalf("run after the crash: %v\n%s", err, out)
	}
	hosts := storedHosts(t, db)
	if len(hosts) != firstPart+rest {
		t.Fatalf("%d hosts stored, want %d", len(hosts), firstPart+rest)
	}
	for ip, h := range hosts {
		if h.Contacts != 1 || len(h.Names) != 1 {
			t.Fatalf("host %s: %d contacts, names %v", ip, h.Contacts, h.Names)
		}
	}
	// SQLite's own check of the file (Debian sqlite3, installed by make test).
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Log("sqlite3 not installed (apt-get install sqlite3): PRAGMA integrity_check not run")
		return
	}
	check, err := exec.Command("sqlite3", db, "PRAGMA integrity_check").Output()
	if err != nil || string(bytes.TrimSpace(check)) != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}

// TestCrashLoop: twenty runs in a row, each killed with SIGKILL at a
// random point while it reads a capture from a pipe (mid-batch,
// mid-flush, at start-up), each restarted on the same store. After every
// kill the store opens and is sound, and nothing it held before is lost:
// the hosts only accumulate, their contact counts only grow.
func TestCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary twenty times")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "phonehome")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "inv.db")
	rng := rand.New(rand.NewPCG(11, 28)) // fixed: a failure can be replayed
	_, sqliteErr := exec.LookPath("sqlite3")
	prev := map[netip.Addr]inventory.Host{}
	const runs, perRun = 20, 400
	for run := range runs {
		fifo := filepath.Join(dir, fmt.Sprintf("tap%d.pcap", run))
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skipf("no FIFO here: %v", err)
		}
		// New hosts each run, and hosts 0-49 again so that counts grow.
		capture := hostsCapture(t, 50+run*perRun, perRun)
		again := hostsCapture(t, 0, 50)
		cmd := exec.Command(bin, "run", "-r", fifo, "--storage.path", db, "--storage.flush-interval", "20ms", "--log.level", "error")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		writer, killed := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(writer)
			// Non-blocking open: a sensor killed before it opened the
			// pipe must not leave the writer waiting for a reader.
			var pipe *os.File
			for pipe == nil {
				f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
				if err == nil {
					pipe = f
					break
				}
				select {
				case <-killed:
					return
				case <-time.After(time.Millisecond):
				}
			}
			defer pipe.Close()
			// The pcap header comes with the first chunk; then packets
			// trickle in so that the kill lands anywhere in the run.
			hdrLen := 24
			pipe.Write(capture)
			body := again[hdrLen:]
			for len(body) > 0 {
				n := min(len(body), 600)
				if _, err := pipe.Write(body[:n]); err != nil {
					return
				}
				body = body[n:]
				time.Sleep(2 * time.Millisecond)
			}
			<-killed // kept open until the kill: the sensor waits for more
		}()
		kill := time.Duration(rng.IntN(300)) * time.Millisecond
		select {
		case err := <-exited:
			t.Fatalf("run %d ended before the kill (%v): %v\n%s", run, kill, err, stderr.String())
		case <-time.After(kill):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		close(killed)
		<-writer

		if _, err := os.Stat(db); err != nil {
			if run == 0 {
				continue // killed before the store was created
			}
			t.Fatalf("run %d: store gone: %v", run, err)
		}
		hosts := storedHosts(t, db) // fails the test if the store does not open
		for ip, h := range prev {
			now, ok := hosts[ip]
			if !ok {
				t.Fatalf("run %d (killed after %v): host %s lost", run, kill, ip)
			}
			if now.Contacts < h.Contacts {
				t.Fatalf("run %d (killed after %v): host %s went from %d to %d contacts", run, kill, ip, h.Contacts, now.Contacts)
			}
		}
		if sqliteErr == nil {
			check, err := exec.Command("sqlite3", db, "PRAGMA integrity_check").Output()
			if err != nil || string(bytes.TrimSpace(check)) != "ok" {
				t.Fatalf("run %d: integrity_check: %q %v", run, check, err)
			}
		}
		t.Logf("run %d: killed after %v: %d hosts stored", run, kill, len(hosts))
		prev = hosts
	}
	if len(prev) < perRun {
		t.Errorf("only %d hosts stored after %d runs: the kills never let a flush through", len(prev), runs)
	}
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for n := 512; n > 0; n /= 2 { // the last blocks
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	f.Sync()
}

// TestFullDisk: the state database on a full file system (a small tmpfs).
// At start: exit 2 naming the file. During a run: the writes fail, are
// retried and counted, the run ends with exit 1 naming the file, and once
// there is room again a run completes the inventory on a sound store.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs and runs the binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.Mkdir(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	bin := filepath.Join(dir, "phonehome")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	db := filepath.Join(small, "inv.db")
	filler := filepath.Join(small, "filler")
	run := func(capture string) (int, string) {
		cmd := exec.Command(bin, "run", "-r", capture, "--storage.path", db, "--storage.flush-interval", "50ms", "--log.level", "warn", "--summary.hosts", "0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	capture := filepath.Join(dir, "hosts.pcap")
	if err := os.WriteFile(capture, hostsCapture(t, 0, 100), 0o644); err != nil {
		t.Fatal(err)
	}

	// At start.
	fill(t, filler)
	if code, out := run(capture); code != 2 || !strings.Contains(out, db) {
		t.Fatalf("full disk at start: exit %d, want 2 naming %s:\n%s", code, db, out)
	}
	os.Remove(filler)
	os.Remove(db)

	// During a run: the first hosts are written, then the disk fills.
	fifo := filepath.Join(dir, "tap.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	cmd := exec.Command(bin, "run", "-r", fifo, "--storage.path", db, "--storage.flush-interval", "50ms", "--log.level", "warn", "--summary.hosts", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pipe, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	pipe.Write(hostsCapture(t, 0, 256)) // the reader hands packets on in batches of 256
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(db); err == nil && len(storedHosts(t, db)) == 256 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first hosts not written; stderr:\n%s", stderr.String())
		}
	}
	fill(t, filler)
	pipe.Write(hostsCapture(t, 256, 44)[24:]) // no second file header
	pipe.Close()
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), db) || !strings.Contains(stderr.String(), "full") {
		t.Errorf("disk full during the run: exit %d, want 1 naming %s and the cause:\n%s", code, db, stderr.String())
	}
	t.Logf("disk full during the run: exit %d:\n%s", cmd.ProcessState.ExitCode(), stderr.String())
	os.Remove(filler)
	if hosts := storedHosts(t, db); len(hosts) != 256 {
		t.Errorf("%d hosts in the store after the failed writes, want the 256 written before", len(hosts))
	}

	// Room again: the rest is written, on a sound store.
	rest := filepath.Join(dir, "rest.pcap")
	os.WriteFile(rest, hostsCapture(t, 256, 44), 0o644)
	if code, out := run(rest); code != 0 {
		t.Fatalf("after freeing space: exit %d:\n%s", code, out)
	}
	if hosts := storedHosts(t, db); len(hosts) != 300 {
		t.Errorf("%d hosts stored after freeing space, want 300", len(hosts))
	}
	if _, err := exec.LookPath("sqlite3"); err == nil {
		check, err := exec.Command("sqlite3", db, "PRAGMA integrity_check").Output()
		if err != nil || string(bytes.TrimSpace(check)) != "ok" {
			t.Fatalf("integrity_check: %q %v", check, err)
		}
	}
}
