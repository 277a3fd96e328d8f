package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrTimeout is returned by a live source's ReadPacket when no packet came
// within its poll timeout. It is not an end: the caller hands over what it
// holds, checks whether it should stop, and reads again.
var ErrTimeout = errors.New("no packet within the poll timeout")

// ErrNoInterface is returned for an interface that does not exist.
var ErrNoInterface = errors.New("no such network interface")

// ErrFanoutGroup is returned when the kernel refuses to join a socket to
// its fanout group.
var ErrFanoutGroup = errors.New("cannot join the AF_PACKET fanout group")

// ErrNoLibpcap is returned for --capture.method pcap by a binary built
// without the pcap build tag (the default, CGO_ENABLED=0 build).
var ErrNoLibpcap = errors.New("this binary was built without libpcap (CGO_ENABLED=0); build it with `make build-pcap` (go build -tags pcap, needs libpcap-dev) or use --capture.method afpacket")

// Capture methods.
const (
	MethodAFPacket = "afpacket"
	MethodPcap     = "pcap"
)

// Live capture defaults (DESIGN.md flags; README "Live capture").
const (
	DefaultFanoutGroup  = 4242 // not Suricata's 99 nor Zeek's 23
	DefaultRingSize     = 64 << 20
	DefaultBlockTimeout = 100 * time.Millisecond
	DefaultSnaplen      = 65535

	// afBlockSize is the TPACKET_V3 block size: a block is handed to the
	// sensor when full or after the block timeout. It must hold the
	// largest packet (snap length and headers).
	afBlockSize = 1 << 20
	afFrameSize = 1 << 12
	// MaxSnaplen bounds --capture.snaplen (a packet must fit a block).
	MaxSnaplen = 262144
	// MinSnaplen is the smallest useful snap length: headers and the
	// first bytes of a DNS message.
	MinSnaplen = 128
)

// LiveConfig says what to capture and how.
type LiveConfig struct {
	Interfaces []string
	// Method is MethodAFPacket (default) or MethodPcap.
	Method string
	// Sockets is the number of AF_PACKET sockets per interface, joined
	// in one fanout group (PACKET_FANOUT_HASH) when more than one: one
	// per worker. libpcap opens one handle per interface whatever this
	// says.
	Sockets int
	// FanoutGroup is the fanout group id of the first interface; the
	// n-th interface uses FanoutGroup+n (a group is bound to one
	// interface).
	FanoutGroup int
	// RingSize is the ring (AF_PACKET) or buffer (libpcap) size of one
	// socket, in bytes.
	RingSize int
	// BlockTimeout bounds how long a packet waits in a partly filled
	// TPACKET_V3 block (libpcap: the packet buffer timeout).
	BlockTimeout time.Duration
	Snaplen      int
	Promisc      bool
	// Filter is a BPF filter: a tcpdump expression, or a compiled
	// program in `tcpdump -ddd` form (see ParseRawBPF).
	Filter string
}

// Check validates the configuration without opening anything.
func (c *LiveConfig) Check() error {
	if len(c.Interfaces) == 0 {
		return errors.New("no interface to capture on")
	}
	seen := map[string]bool{}
	for _, i := range c.Interfaces {
		if i == "" {
			return errors.New("-i: empty interface name")
		}
		if seen[i] {
			return fmt.Errorf("-i %s: given twice", i)
		}
		seen[i] = true
	}
	switch c.Method {
	case "", MethodAFPacket:
	case MethodPcap:
		if !HavePcap {
			return fmt.Errorf("--capture.method pcap: %w", ErrNoLibpcap)
		}
	default:
		return fmt.Errorf("--capture.method %q: must be afpacket or pcap", c.Method)
	}
	if c.Sockets < 1 || c.Sockets > 1024 {
		return fmt.Errorf("sockets per interface %d: must be between 1 and 1024", c.Sockets)
	}
	if c.FanoutGroup < 0 || c.FanoutGroup+len(c.Interfaces)-1 > 0xffff {
		return fmt.Errorf("--capture.fanout-group %d: must be between 0 and %d with %d interfaces (interface n uses group+n)",
			c.FanoutGroup, 0xffff-len(c.Interfaces)+1, len(c.Interfaces))
	}
	if c.RingSize < 2*afBlockSize || c.RingSize > 1<<34 {
		return fmt.Errorf("--capture.ring-size %d: must be between %d (2 MiB) and 16 GiB", c.RingSize, 2*afBlockSize)
	}
	if c.BlockTimeout < time.Millisecond || c.BlockTimeout > 10*time.Second {
		return fmt.Errorf("--capture.block-timeout %s: must be between 1ms and 10s", c.BlockTimeout)
	}
	if c.Snaplen < MinSnaplen || c.Snaplen > MaxSnaplen {
		return fmt.Errorf("--capture.snaplen %d: must be between %d and %d", c.Snaplen, MinSnaplen, MaxSnaplen)
	}
	return nil
}

// LiveStats are the capture counters of one interface, summed over its
// sockets, since the capture began.
type LiveStats struct {
	Interface string
	// Packets that passed the BPF filter, kept or dropped (the kernel's
	// tp_packets, libpcap's ps_recv): KernelDrops are among them.
	Packets uint64
	// KernelDrops: packets that passed the filter and were dropped
	// because the ring (or libpcap buffer) was full — the sensor did
	// not keep up.
	KernelDrops uint64
	// IfaceDrops: packets the interface or its driver dropped before
	// the kernel saw them (rx_missed_errors + rx_fifo_errors since the
	// start, as libpcap counts ps_ifdrop on Linux).
	IfaceDrops uint64
	// QueueFreezes: TPACKET_V3 ring freezes (every block was in use).
	QueueFreezes uint64
}

// LiveSource is one socket or handle of a live capture.
type LiveSource interface {
	Source
	// Interface is the name of the interface captured.
	Interface() string
	// Member is the socket's index in its fanout group (0 without
	// fanout).
	Member() int
	// stats reads the counters of this socket since it was opened.
	stats() (LiveStats, error)
}

// Live is an open live capture: every socket of every interface.
type Live struct {
	cfg     LiveConfig
	Sources []LiveSource // interface by interface, fanout member by member
	// Fanout tells whether the kernel shards each interface's packets
	// over its sockets by flow (AF_PACKET fanout): then Sources[i] feeds
	// worker Member(). Without it, packets must be sharded by the reader.
	Fanout bool

	mu       sync.Mutex
	last     []LiveStats // per interface, in cfg.Interfaces order
	ifBase   []uint64    // interface drop counters at the start
	pollErrs int
}

// OpenLive opens every socket (or handle) of the capture, sets its filter
// and joins it to its fanout group; on error nothing stays open. Opening
// needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode).
func OpenLive(cfg LiveConfig) (*Live, error) {
	if cfg.Method == "" {
		cfg.Method = MethodAFPacket
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	l := &Live{cfg: cfg}
	var err error
	switch cfg.Method {
	case MethodPcap:
		l.Sources, err = openPcap(&cfg)
	default:
		l.Sources, err = openAFPacket(&cfg)
		l.Fanout = cfg.Sockets > 1
	}
	if err != nil {
		return nil, err
	}
	l.last = make([]LiveStats, len(cfg.Interfaces))
	l.ifBase = make([]uint64, len(cfg.Interfaces))
	for i, name := range cfg.Interfaces {
		l.last[i].Interface = name
		l.ifBase[i] = ifaceDrops(name)
	}
	return l, nil
}

// Interfaces returns the interfaces captured.
func (l *Live) Interfaces() []string { return l.cfg.Interfaces }

// Method returns the capture method in use.
func (l *Live) Method() string { return l.cfg.Method }

// Poll reads the counters of every socket and returns them per interface.
func (l *Live) Poll() ([]LiveStats, error) {
	out := make([]LiveStats, len(l.cfg.Interfaces))
	idx := map[string]int{}
	for i, name := range l.cfg.Interfaces {
		out[i].Interface = name
		idx[name] = i
	}
	var firstErr error
	for _, s := range l.Sources {
		st, err := s.stats()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: reading capture statistics: %w", s.Name(), err)
			}
			continue
		}
		o := &out[idx[s.Interface()]]
		o.Packets += st.Packets
		o.KernelDrops += st.KernelDrops
		o.QueueFreezes += st.QueueFreezes
		o.IfaceDrops += st.IfaceDrops // libpcap's ps_ifdrop
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, name := range l.cfg.Interfaces {
		if l.cfg.Method == MethodAFPacket {
			if d := ifaceDrops(name); d >= l.ifBase[i] {
				out[i].IfaceDrops = d - l.ifBase[i]
			}
		}
		// Counters never go back, even when one read failed.
		out[i].Packets = max(out[i].Packets, l.last[i].Packets)
		out[i].KernelDrops = max(out[i].KernelDrops, l.last[i].KernelDrops)
		out[i].IfaceDrops = max(out[i].IfaceDrops, l.last[i].IfaceDrops)
		out[i].QueueFreezes = max(out[i].QueueFreezes, l.last[i].QueueFreezes)
	}
	if firstErr != nil {
		l.pollErrs++
	}
	l.last = out
	return append([]LiveStats(nil), out...), firstErr
}

// Stats returns the counters read by the last Poll, per interface: for
// metrics and the summary.
func (l *Live) Stats() []LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LiveStats(nil), l.last...)
}

// Watch polls the counters every interval until ctx is done, and calls
// onPoll (if not nil) with each reading.
func (l *Live) Watch(ctx context.Context, interval time.Duration, onPoll func([]LiveStats, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := l.Poll()
			if onPoll != nil {
				onPoll(st, err)
			}
		}
	}
}

// Close closes every socket. No ReadPacket may be running.
func (l *Live) Close() error {
	var first error
	for _, s := range l.Sources {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	l.Sources = nil
	return first
}

// sysfsNet is where interface counters are read (a variable for tests).
var sysfsNet = "/sys/class/net"

// ifaceDrops returns the interface's receive drops as libpcap counts them
// on Linux (ps_ifdrop): rx_missed_errors + rx_fifo_errors. 0 when the
// counters cannot be read.
func ifaceDrops(iface string) uint64 {
	var n uint64
	for _, c := range []string{"rx_missed_errors", "rx_fifo_errors"} {
		b, err := os.ReadFile(filepath.Join(sysfsNet, iface, "statistics", c))
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err == nil {
			n += v
		}
	}
	return n
}
