package capture

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func okLive() LiveConfig {
	return LiveConfig{Interfaces: []string{"eth0"}, Method: MethodAFPacket, Sockets: 2, FanoutGroup: DefaultFanoutGroup,
		RingSize: DefaultRingSize, BlockTimeout: DefaultBlockTimeout, Snaplen: DefaultSnaplen, Promisc: true}
}

func TestLiveConfigCheck(t *testing.T) {
	c := okLive()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		change func(*LiveConfig)
		want   string
	}{
		{func(c *LiveConfig) { c.Interfaces = nil }, "no interface"},
		{func(c *LiveConfig) { c.Interfaces = []string{"eth0", "eth0"} }, "given twice"},
		{func(c *LiveConfig) { c.Interfaces = []string{""} }, "empty interface"},
		{func(c *LiveConfig) { c.Method = "netmap" }, "must be afpacket or pcap"},
		{func(c *LiveConfig) { c.Sockets = 0 }, "between 1 and 1024"},
		{func(c *LiveConfig) { c.FanoutGroup = 70000 }, "--capture.fanout-group"},
		{func(c *LiveConfig) { c.FanoutGroup = 0xffff; c.Interfaces = []string{"a", "b"} }, "interface n uses group+n"},
		{func(c *LiveConfig) { c.RingSize = 1 << 20 }, "--capture.ring-size"},
		{func(c *LiveConfig) { c.BlockTimeout = 0 }, "--capture.block-timeout"},
		{func(c *LiveConfig) { c.BlockTimeout = time.Minute }, "--capture.block-timeout"},
		{func(c *LiveConfig) { c.Snaplen = 10 }, "--capture.snaplen"},
		{func(c *LiveConfig) { c.Snaplen = 1 << 20 }, "--capture.snaplen"},
	} {
		c := okLive()
		tc.change(&c)
		if err := c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	c = okLive()
	c.Method = MethodPcap
	err := c.Check()
	if HavePcap && err != nil {
		t.Errorf("pcap build: %v", err)
	}
	if !HavePcap && (err == nil || !errors.Is(err, ErrNoLibpcap) || !strings.Contains(err.Error(), "built without libpcap")) {
		t.Errorf("pcap without the build tag: %v", err)
	}
}

func TestOpenLiveNoInterface(t *testing.T) {
	c := okLive()
	c.Interfaces = []string{"phnoexist0"}
	if _, err := OpenLive(c); !errors.Is(err, ErrNoInterface) {
		t.Errorf("%v, want ErrNoInterface", err)
	}
}

// TestOpenLiveBadFilter: a bad filter is refused before any socket is
// opened, so without privileges too.
func TestOpenLiveBadFilter(t *testing.T) {
	c := okLive()
	c.Interfaces = []string{"lo"}
	c.Filter = "1\n40 0 0 12"
	if _, err := OpenLive(c); !errors.Is(err, ErrBadFilter) {
		t.Errorf("%v, want ErrBadFilter", err)
	}
}

func TestIfaceDrops(t *testing.T) {
	dir := t.TempDir()
	old := sysfsNet
	sysfsNet = dir
	defer func() { sysfsNet = old }()
	st := filepath.Join(dir, "eth9", "statistics")
	if err := os.MkdirAll(st, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(st, "rx_missed_errors"), []byte("7\n"), 0o644)
	os.WriteFile(filepath.Join(st, "rx_fifo_errors"), []byte("5\n"), 0o644)
	os.WriteFile(filepath.Join(st, "rx_dropped"), []byte("1000\n"), 0o644)
	if n := ifaceDrops("eth9"); n != 12 {
		t.Errorf("ifaceDrops %d, want 12", n)
	}
	if n := ifaceDrops("eth8"); n != 0 {
		t.Errorf("missing interface: %d", n)
	}
}
