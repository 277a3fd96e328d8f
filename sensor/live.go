package main

// Live capture: flags, opening the sockets, dropping privileges, systemd
// readiness, kernel drop counters. sense() calls openLive before it opens
// anything else and runs the pipeline through (*liveCapture).run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/pipeline"
)

// liveArgs are the live capture flags.
type liveArgs struct {
	ifaces       []string
	method       string
	filter       string
	fanoutGroup  int
	ringSize     units.Base2Bytes
	blockTimeout time.Duration
	snaplen      int
	promisc      bool
	runAs        string

	// open is the capture in use, for the summary (nil when reading files).
	open *capture.Live
}

// addLiveFlags registers the live capture flags on a command that reads
// packets (run, inspect).
func addLiveFlags(c *kingpin.CmdClause, l *liveArgs) {
	c.Flag("interface", "Capture live on this interface; repeatable. Excludes -r.").Short('i').PlaceHolder("IFACE").StringsVar(&l.ifaces)
	c.Flag("capture.method", "Live capture method: afpacket (AF_PACKET TPACKET_V3, one socket per worker joined by fanout) or pcap (libpcap; needs a binary built with -tags pcap).").
		Default(capture.MethodAFPacket).EnumVar(&l.method, capture.MethodAFPacket, capture.MethodPcap)
	c.Flag("capture.filter", "BPF filter: a tcpdump expression (compiled by libpcap in a pcap build, else by tcpdump -ddd), or a program in `tcpdump -ddd` form.").PlaceHolder("BPF").StringVar(&l.filter)
	c.Flag("capture.fanout-group", "AF_PACKET fanout group id of the first interface (interface n uses id+n); must differ from other capture tools' on the same interfaces.").
		Default(fmt.Sprint(capture.DefaultFanoutGroup)).IntVar(&l.fanoutGroup)
	c.Flag("capture.ring-size", "Ring buffer size per socket (afpacket) or buffer size per interface (pcap).").Default("64MiB").BytesVar(&l.ringSize)
	c.Flag("capture.block-timeout", "Longest time a packet waits in a partly filled ring block (afpacket) or buffer (pcap).").Default("100ms").DurationVar(&l.blockTimeout)
	c.Flag("capture.snaplen", "Bytes kept of each packet.").Default(fmt.Sprint(capture.DefaultSnaplen)).IntVar(&l.snaplen)
	c.Flag("capture.promisc", "Put the interfaces in promiscuous mode (--no-capture.promisc: do not).").Default("true").BoolVar(&l.promisc)
	c.Flag("run-as", "Once the capture sockets are open, switch to this user (USER or USER:GROUP, names or numbers), which drops every privilege.").PlaceHolder("USER").StringVar(&l.runAs)
}

// liveCapture is an open live capture; nil when reading files.
type liveCapture struct {
	cap     *capture.Live
	workers int
	log     *slog.Logger
}

// openLive checks the choice between files and interfaces and, for a live
// run, opens every socket, then drops privileges (--run-as). It runs
// before any file is opened, so that the outputs and the inventory are
// opened (and created) by the unprivileged user.
func openLive(a *args, log *slog.Logger) (*liveCapture, error) {
	l := &a.live
	switch {
	case len(a.files) > 0 && len(l.ifaces) > 0:
		return nil, usage("-r and -i are mutually exclusive: read capture files or capture live, not both")
	case len(a.files) == 0 && len(l.ifaces) == 0:
		return nil, usage("nothing to read: give a capture file (-r, --read FILE) or an interface to capture on (-i, --interface IFACE)")
	case len(l.ifaces) == 0:
		if l.filter != "" {
			return nil, usage("--capture.filter applies to live capture (-i), not to files")
		}
		if l.runAs != "" {
			return nil, usage("--run-as applies to live capture (-i)")
		}
		return nil, nil
	}
	cfg := capture.LiveConfig{
		Interfaces:   l.ifaces,
		Method:       l.method,
		Sockets:      a.workers,
		FanoutGroup:  l.fanoutGroup,
		RingSize:     int(l.ringSize),
		BlockTimeout: l.blockTimeout,
		Snaplen:      l.snaplen,
		Promisc:      l.promisc,
		Filter:       l.filter,
	}
	if cfg.Method == capture.MethodPcap {
		cfg.Sockets = 1 // one handle per interface; the reader shards
	}
	if err := cfg.Check(); err != nil {
		return nil, usageError{err}
	}
	var runAs *capture.RunAs
	if l.runAs != "" {
		r, err := capture.ParseRunAs(l.runAs)
		if err != nil {
			return nil, usageError{err}
		}
		runAs = &r
	}
	lv, err := capture.OpenLive(cfg)
	if err != nil {
		for _, e := range []error{capture.ErrBadFilter, capture.ErrNoInterface, capture.ErrNoLibpcap, capture.ErrFanoutGroup} {
			if errors.Is(err, e) {
				return nil, usageError{err}
			}
		}
		return nil, err
	}
	if runAs != nil {
		if err := runAs.Drop(); err != nil {
			lv.Close()
			return nil, err
		}
		log.Info("privileges dropped", "user", runAs.Spec, "uid", runAs.UID, "gid", runAs.GID)
	} else if os.Geteuid() == 0 {
		log.Info("capturing as root; --run-as USER drops privileges once the sockets are open")
	}
	l.open = lv
	return &liveCapture{cap: lv, workers: a.workers, log: log}, nil
}

// close closes the sockets (after the run).
func (lc *liveCapture) close() {
	if lc != nil {
		lc.cap.Close()
	}
}

// alertFlushEvery is how often, at most, alert outputs are flushed during
// a live run, when something was written.
const alertFlushEvery = 250 * time.Millisecond

// run runs the pipeline: over the files, or live until ctx is done. Live,
// flush (the alert writer's) is called soon after each event, so that
// alerts do not wait in a buffer for the end of the run.
func (lc *liveCapture) run(ctx context.Context, files []capture.Source, cfg pipeline.Config, flush func() error) (*pipeline.Stats, error) {
	if lc == nil {
		return pipeline.Run(ctx, files, cfg)
	}
	cfg.Lossy = true
	var emitted atomic.Bool
	if emit := cfg.Emit; emit != nil && flush != nil {
		cfg.Emit = func(e *alert.Event) {
			emit(e)
			emitted.Store(true)
		}
	}
	inputs := make([]pipeline.LiveInput, len(lc.cap.Sources))
	for i, s := range lc.cap.Sources {
		inputs[i] = pipeline.LiveInput{Source: s, Worker: -1}
		if lc.cap.Fanout {
			inputs[i].Worker = s.Member()
		}
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go lc.cap.Watch(pollCtx, time.Second, lc.dropLogger())
	if flush != nil {
		go func() {
			t := time.NewTicker(alertFlushEvery)
			defer t.Stop()
			failed := false
			for {
				select {
				case <-pollCtx.Done():
					return
				case <-t.C:
					if !emitted.Swap(false) {
						continue
					}
					if err := flush(); err != nil && !failed {
						failed = true // the final flush reports it
						lc.log.Error("writing alerts", "err", err)
					}
				}
			}
		}()
	}

	var stopping sync.Once
	stop := func() {
		stopping.Do(func() {
			if _, err := sdNotify("STOPPING=1"); err != nil {
				lc.log.Warn("systemd notification failed", "err", err)
			}
		})
	}
	go func() {
		<-pollCtx.Done()
		if ctx.Err() != nil {
			stop()
		}
	}()
	status := fmt.Sprintf("capturing on %s (%s, %d workers)", strings.Join(lc.cap.Interfaces(), ", "), lc.cap.Method(), lc.workers)
	if sent, err := sdNotify("READY=1\nSTATUS=" + status); err != nil {
		lc.log.Warn("systemd notification failed", "err", err)
	} else if sent {
		lc.log.Debug("told systemd we are ready")
	}
	lc.log.Info("live capture started", "interfaces", strings.Join(lc.cap.Interfaces(), ","), "method", lc.cap.Method(), "workers", lc.workers)

	st, err := pipeline.RunLive(ctx, inputs, cfg)
	stop()
	if _, perr := lc.cap.Poll(); perr != nil {
		lc.log.Warn("reading capture statistics", "err", perr)
	}
	if err == nil && ctx.Err() == nil {
		// Every source ended before we were told to stop.
		why := "every source ended"
		if st != nil && len(st.Warnings) > 0 {
			why = strings.Join(st.Warnings, "; ")
		}
		return st, fmt.Errorf("live capture failed: %s", why)
	}
	return st, err
}

// dropLogger warns when the kernel starts dropping packets, at most every
// ten seconds.
func (lc *liveCapture) dropLogger() func([]capture.LiveStats, error) {
	var said uint64
	var when time.Time
	var errSaid bool
	return func(st []capture.LiveStats, err error) {
		if err != nil && !errSaid {
			errSaid = true
			lc.log.Warn("reading capture statistics", "err", err)
		}
		var drops uint64
		for _, s := range st {
			drops += s.KernelDrops + s.IfaceDrops
		}
		if drops > said && time.Since(when) >= 10*time.Second {
			lc.log.Warn("packets dropped before the sensor saw them; see --workers and --capture.ring-size", "dropped_total", drops, "new", drops-said)
			said, when = drops, time.Now()
		}
	}
}

// liveSummary writes one summary line per interface captured.
func liveSummary(w io.Writer, a *args) {
	l := a.live.open
	if l == nil {
		return
	}
	for _, s := range l.Stats() {
		fmt.Fprintf(w, "  capture\t%s (%s): %d packets, %d kernel drops, %d interface drops, %d ring freezes\n",
			s.Interface, l.Method(), s.Packets, s.KernelDrops, s.IfaceDrops, s.QueueFreezes)
	}
}

// sdNotify sends a state to systemd's notification socket ($NOTIFY_SOCKET,
// a unix datagram socket; "@name" is an abstract one). It tells whether
// there was a socket to send to.
func sdNotify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		return false, fmt.Errorf("NOTIFY_SOCKET %q: only unix socket paths and abstract (@) names are supported", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("NOTIFY_SOCKET: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("NOTIFY_SOCKET: %w", err)
	}
	return true, nil
}
