package store

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// The crash test's child process writes batches to the store named by
// crashEnvPath, numbered from crashEnvFirst, and prints each number once
// its batch is committed.
const (
	crashEnvPath  = "PHONEHOME_STORE_CRASH_PATH"
	crashEnvFirst = "PHONEHOME_STORE_CRASH_FIRST"
	crashHosts    = 40 // hosts per batch besides the counter host
)

var crashCounter = netip.MustParseAddr("10.255.255.255")

// crashBatch is batch n: crashHosts hosts of its own, one evidence row
// each, and one contact more on the counter host.
func crashBatch(n int) inventory.Batch {
	when := t0.Add(time.Duration(n) * time.Second)
	var b inventory.Batch
	for i := range crashHosts {
		a := crashHost(n, i)
		d := delta(a.String(), when, when, uint64(n))
		d.Names = []string{fmt.Sprintf("batch-%d.example", n)}
		d.Categories = cat(when, when, 1, inventory.Traffic{Flows: 1})
		b.Hosts = append(b.Hosts, d)
		b.Evidence = append(b.Evidence, inventory.EvidenceRow{IP: a, Time: when, Category: rules.CategoryManagement, Observer: "crash"})
	}
	counter := delta(crashCounter.String(), when, when, 1)
	b.Hosts = append(b.Hosts, counter)
	b.Daily = append(b.Daily, inventory.DayCount{IP: crashCounter, Day: when, Category: rules.CategoryManagement, Contacts: 1})
	return b
}

func crashHost(n, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), byte(i + 1)})
}

// TestCrashChild is the child process of TestCrashSafety.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("the child process of TestCrashSafety")
	}
	first, err := strconv.Atoi(os.Getenv(crashEnvFirst))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // never outlive a parent that failed to kill
	for n := first; n < first+10000 && time.Now().Before(deadline); n++ {
		b := crashBatch(n)
		if err := s.Write(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "committed %d\n", n)
	}
	t.Fatal("not killed")
}

// TestCrashSafety kills a process writing to a SQLite store (SIGKILL,
// mid-write) and checks that every batch it reported committed is in the
// store, whole, and that the store is intact and writable.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var reported []int
	for round := range 3 {
		first := 1 + round*10000
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v=false")
		cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvFirst+"="+strconv.Itoa(first))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		got := 0
		killAt := 20 + 17*round // batches committed before the kill
		for sc.Scan() {
			var n int
			if _, err := fmt.Sscanf(sc.Text(), "committed %d", &n); err != nil {
				continue // test framework output
			}
			reported = append(reported, n)
			got++
			if got == killAt {
				// Let the next batch start, then kill it midway.
				time.Sleep(time.Duration(round) * 700 * time.Microsecond)
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v after %d batches, not killed", round, err, got)
		}
		if got < killAt {
			t.Fatalf("round %d: child reported %d batches", round, got)
		}

		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		var check string
		if err := s.w.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("round %d: integrity_check: %q, %v", round, check, err)
		}
		hs, err := s.Hosts(context.Background(), inventory.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		byIP := map[netip.Addr]inventory.Host{}
		for _, h := range hs {
			byIP[h.IP] = h
		}
		for _, n := range reported {
			for i := range crashHosts {
				h, ok := byIP[crashHost(n, i)]
				if !ok || h.Contacts != uint64(n) || len(h.Names) != 1 {
					t.Fatalf("round %d: batch %d reported committed, host %v: %+v (stored: %v)", round, n, crashHost(n, i), h, ok)
				}
			}
		}
		// Batches are whole: the counter host counts the batches in the
		// store, each with all its hosts; at most one more than reported
		// (committed but killed before it was printed).
		batches := byIP[crashCounter].Contacts
		if int(batches) != len(reported) && int(batches) != len(reported)+1 {
			t.Fatalf("round %d: the counter says %d batches, %d reported", round, batches, len(reported))
		}
		if len(hs) != 1+int(batches)*crashHosts {
			t.Fatalf("round %d: %d hosts for %d batches: a batch was written in part", round, len(hs), batches)
		}
		if int(batches) == len(reported)+1 {
			// The unreported batch is the next one of this round.
			reported = append(reported, first+got)
		}
		// Writable again.
		b := crashBatch(first + 9999)
		if err := s.Write(context.Background(), &b); err != nil {
			t.Fatalf("round %d: write after the kill: %v", round, err)
		}
		reported = append(reported, first+9999)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %d committed batches; store intact", round, got)
	}
}
