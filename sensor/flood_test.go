package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// The flood: a capture of floodPackets packets (floodPacketsShort under
// -short), streamed through a FIFO into `phonehome run`, never written
// to disk.
const (
	floodPackets      = 10_000_000
	floodPacketsShort = 1_000_000
	// floodDuration is the packet time the capture spans, whatever its
	// size: 10 µs a packet (100 k packets/s) for 10 M packets. Longer
	// than the timeouts of flows never answered (30 s) and of UDP flows
	// (1 min), so that flows expire on packet time during the run; the
	// flood still fills the table far faster than they expire, so that
	// new flows find it full.
	floodDuration = 100 * time.Second
	// floodRealEvery: one real contact from one of the 5 internal hosts
	// every floodRealEvery packets, from the first packet to the last.
	floodRealEvery = 20_000
	// The real contacts' dedup window: each of them is its own alert
	// (they are at least floodRealEvery packets apart), so that a lost
	// one shows as a missing alert, not as a suppressed repeat.
	floodDedupWindow = "1ms"
	// Peak RSS bound: a fixed part (runtime and binary, rules, the
	// embedded GeoIP database, read buffers and batches, the per-worker
	// gathering cap of 32 MiB, the QUIC states of 4096 flows, and the
	// garbage collector's headroom over them) plus a share per flow of
	// --flow.max (a flow's entry and index slot, ~300 B, with headroom).
	// 256 MiB at the default 262144 flows: the project's target.
	floodRSSFixed   = 160 << 20
	floodRSSPerFlow = 384
	defaultFlowMax  = 262144
)

// floodRSSBound is the peak RSS allowed for a run with flowMax flows.
func floodRSSBound(flowMax int) int64 {
	return floodRSSFixed + int64(flowMax)*floodRSSPerFlow
}

// The 5 internal hosts whose contacts are real matches, and whom they talk to.
var (
	floodResolver = testcap.NewHost("10.9.0.53", 0)
	floodTLSSrv   = testcap.NewHost("198.51.100.20", 0)
	floodHTTPSrv  = testcap.NewHost("198.51.100.21", 0)
)

func floodHost(i int) testcap.Host { return testcap.NewHost(fmt.Sprintf("10.9.0.%d", i+1), 0) }

// What a real contact is: a DNS query; a TLS connection whose
// ClientHello fits one segment (classical X25519 key share only); one
// whose ClientHello comes in two segments (Go's default, with a
// post-quantum key share: ~1.5 kB, as browsers send now); a plain HTTP
// request.
const (
	realDNS = iota
	realTLS1
	realTLS2
	realHTTP
	realKinds
)

var realKindNames = [realKinds]string{"dns", "tls-1-segment", "tls-2-segments", "http"}

// floodName is the name host i contacts with kind k.
func floodName(i, k int) string {
	switch k {
	case realDNS:
		return fmt.Sprintf("dnl-%02d.geo.kaspersky.com", i+1)
	case realTLS1:
		return fmt.Sprintf("dc%d-file.ksn.kaspersky-labs.com", i+1)
	case realTLS2:
		return fmt.Sprintf("ksn-%d.kaspersky-labs.com", i+1)
	}
	return fmt.Sprintf("dnl-%d.upd.kaspersky.com", i+1)
}

// realContacts writes the real contacts with testcap into memory; the
// flood generator copies their frames into the stream with its own
// timestamps.
type realContacts struct {
	w      *testcap.Writer
	buf    bytes.Buffer
	header int
	hellos [5][realKinds][]byte // by host, for realTLS1 and realTLS2
	frames [][]byte
}

func newRealContacts(t *testing.T) *realContacts {
	t.Helper()
	r := &realContacts{}
	w, err := testcap.NewWriter(&r.buf, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	r.w, r.header = w, r.buf.Len()
	for i := range r.hellos {
		one, err := testcap.ClientHelloConfig(&tls.Config{ServerName: floodName(i, realTLS1), CurvePreferences: []tls.CurveID{tls.X25519}})
		if err != nil {
			t.Fatal(err)
		}
		two, err := testcap.ClientHello(floodName(i, realTLS2))
		if err != nil {
			t.Fatal(err)
		}
		if len(one) > testcap.MSS4 || len(two) <= testcap.MSS4 || len(two) > 2*testcap.MSS4 {
			t.Fatalf("hellos of %d and %d bytes: want one segment and two", len(one), len(two))
		}
		r.hellos[i][realTLS1], r.hellos[i][realTLS2] = one, two
	}
	return r
}

// contact returns the frames of real contact kind k from host i (new
// client ports each time).
func (r *realContacts) contact(i, k int, id uint16) ([][]byte, error) {
	r.buf.Truncate(r.header)
	h := floodHost(i)
	var err error
	switch k {
	case realDNS:
		err = r.w.DNS(h, floodResolver, testcap.Query(floodName(i, k), dns.TypeA, id), nil)
	case realTLS1, realTLS2:
		err = r.w.TCPSession(h, floodTLSSrv, 0, 443, testcap.Segments(r.hellos[i][k], testcap.MSS4), nil)
	case realHTTP:
		err = r.w.TCPSession(h, floodHTTPSrv, 0, 80, [][]byte{testcap.HTTPRequest("GET", floodName(i, k), "/index/u0607g.xml.klz", "")}, nil)
	}
	if err != nil {
		return nil, err
	}
	r.frames = r.frames[:0]
	for b := r.buf.Bytes()[r.header:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:12]))
		r.frames = append(r.frames, b[16:16+n])
		b = b[16+n:]
	}
	return r.frames, nil
}

// template is a pre-serialized Ethernet/IPv4/TCP-or-UDP frame whose
// addresses, ports and a few other fields are patched for each packet;
// the transport checksum is updated from a precomputed sum of the bytes
// that do not change.
type template struct {
	frame  []byte
	sumOff int      // offset of the transport checksum
	vary   [][2]int // frame ranges rewritten per packet (even offsets from the transport header)
	base   uint32   // one's complement sum of the rest of the transport bytes and the pseudo header's protocol and length
}

const (
	ethLen  = 14
	ipLen   = 20
	l4Off   = ethLen + ipLen
	ipSrc   = ethLen + 12
	ipIDOff = ethLen + 4
	ipSum   = ethLen + 10
)

func newTemplate(t *testing.T, l4 gopacket.SerializableLayer, payload []byte, vary ...[2]int) *template {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(192, 0, 2, 2)}
	sumOff := l4Off + 16 // TCP
	switch l := l4.(type) {
	case *layers.TCP:
		ip.Protocol = layers.IPProtocolTCP
		if err := l.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	case *layers.UDP:
		ip.Protocol = layers.IPProtocolUDP
		sumOff = l4Off + 6
		if err := l.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	tp := &template{frame: append([]byte(nil), sb.Bytes()...), sumOff: sumOff}
	for _, v := range vary {
		tp.vary = append(tp.vary, [2]int{l4Off + v[0], l4Off + v[1]})
	}
	// The base sum: the transport bytes with the checksum and the
	// varying ranges zeroed, plus protocol and length of the pseudo header.
	seg := append([]byte(nil), tp.frame[l4Off:]...)
	seg[sumOff-l4Off], seg[sumOff-l4Off+1] = 0, 0
	for _, v := range vary {
		clear(seg[v[0]:v[1]])
	}
	tp.base = sum16(uint32(ip.Protocol)+uint32(len(seg)), seg)
	return tp
}

// sum16 adds b to s as big-endian 16-bit words.
func sum16(s uint32, b []byte) uint32 {
	for len(b) >= 8 {
		s += uint32(binary.BigEndian.Uint16(b)) + uint32(binary.BigEndian.Uint16(b[2:])) +
			uint32(binary.BigEndian.Uint16(b[4:])) + uint32(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// finish sets the IPv4 header checksum and the transport checksum of a
// template whose addresses and varying ranges were written.
func (tp *template) finish() {
	f := tp.frame
	f[ipSum], f[ipSum+1] = 0, 0
	binary.BigEndian.PutUint16(f[ipSum:], fold(sum16(0, f[ethLen:l4Off])))
	s := sum16(tp.base, f[ipSrc:ipSrc+8])
	for _, v := range tp.vary {
		s = sum16(s, f[v[0]:v[1]])
	}
	c := fold(s)
	if c == 0 && tp.sumOff == l4Off+6 {
		c = 0xffff // UDP: 0 means no checksum
	}
	binary.BigEndian.PutUint16(f[tp.sumOff:], c)
}

// floodGen writes the flood.
type floodGen struct {
	rng  *rand.Rand
	pw   *pcapgo.Writer
	now  time.Time
	step time.Duration

	syn, udp, hello, quic *template

	real    *realContacts
	sent    [realKinds]int    // real contacts written, by kind
	perName map[[2]string]int // real contacts written, by host and name
	kinds   map[string]int    // flood packets written, by kind
	total   int               // frames written
	bytes   int64             // frame bytes written
	names   [5][realKinds]string
}

// Flood packet kinds, in the order of the weights below.
const (
	floodSYN = iota
	floodUDP
	floodHello
	floodQUIC
)

var floodKindNames = [...]string{"tcp-syn", "udp-small", "hello-incomplete", "quic-initial"}

// floodWeights are the shares, in percent, of each flood kind.
var floodWeights = [...]int{35, 25, 20, 20}

const (
	floodUDPPayload   = 32
	floodHelloCut     = 512 // bytes of a ~1.5 kB ClientHello sent: the rest never comes
	floodQUICDatagram = 1200
	quicVary          = 32 // random bytes after the QUIC header, per packet (the header protection sample among them)
)

func newFloodGen(t *testing.T, w io.Writer, start time.Time, step time.Duration, real *realContacts) *floodGen {
	t.Helper()
	g := &floodGen{rng: rand.New(rand.NewPCG(1, 2)), now: start, step: step, real: real,
		perName: map[[2]string]int{}, kinds: map[string]int{}}
	for i := range g.names {
		for k := range g.names[i] {
			g.names[i][k] = floodName(i, k)
		}
	}
	g.pw = pcapgo.NewWriter(w)
	if err := g.pw.WriteFileHeader(testcap.SnapLen, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	mss := []byte{0x05, 0xb4}
	ts := make([]byte, 8)
	g.syn = newTemplate(t, &layers.TCP{SYN: true, Window: 64240, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: mss},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}}, nil, [2]int{0, 8})
	g.udp = newTemplate(t, &layers.UDP{}, make([]byte, floodUDPPayload), [2]int{0, 4}, [2]int{8, 8 + floodUDPPayload})
	hello, err := testcap.ClientHello("www.example.org", "h2", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	if int(binary.BigEndian.Uint16(hello[3:5]))+5 <= floodHelloCut {
		t.Fatalf("hello of %d bytes: not cut by %d", len(hello), floodHelloCut)
	}
	g.hello = newTemplate(t, &layers.TCP{ACK: true, PSH: true, DstPort: 443, Window: 502}, hello[:floodHelloCut], [2]int{0, 12})
	// A QUIC v1 client Initial: long header, a random 8-byte DCID, no
	// SCID, no token, a Length covering the rest of the datagram (padded
	// to 1200 bytes), a payload of random bytes that no key opens.
	q := make([]byte, floodQUICDatagram)
	q[0] = 0xc3
	binary.BigEndian.PutUint32(q[1:], 1)
	q[5] = 8
	// q[6:14] DCID, q[14] SCID length 0, q[15] token length 0
	hdr := 18
	binary.BigEndian.PutUint16(q[16:], 0x4000|uint16(floodQUICDatagram-hdr))
	for i := hdr; i < len(q); i++ {
		q[i] = byte(g.rng.Uint32())
	}
	g.quic = newTemplate(t, &layers.UDP{DstPort: 443}, q, [2]int{0, 4}, [2]int{8 + 6, 8 + 14}, [2]int{8 + hdr, 8 + hdr + quicVary})
	return g
}

// randAddr writes a random IPv4 address that is none of the real hosts'.
func (g *floodGen) randAddr(b []byte) {
	for {
		binary.BigEndian.PutUint32(b, g.rng.Uint32())
		if b[0] != 10 || b[1] != 9 || b[2] != 0 {
			return
		}
	}
}

func (g *floodGen) write(frame []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: g.now, CaptureLength: len(frame), Length: len(frame)}
	g.now = g.now.Add(g.step)
	g.total++
	g.bytes += int64(len(frame))
	return g.pw.WritePacket(ci, frame)
}

// ephemeral returns a client port from the ephemeral range (49152-65535):
// clear of the DNS and DHCP ports, whose extractors would take the
// packet instead of the TLS and QUIC ones.
func ephemeral(r uint64) uint16 { return uint16(49152 + r%16384) }

// flood writes one flood packet.
func (g *floodGen) flood() error {
	r := g.rng.Uint64()
	pick, kind := int(r%100), 0
	for kind < len(floodWeights)-1 && pick >= floodWeights[kind] {
		pick -= floodWeights[kind]
		kind++
	}
	r >>= 8
	var tp *template
	var f []byte
	switch kind {
	case floodSYN:
		tp = g.syn
		f = tp.frame
		binary.BigEndian.PutUint64(f[l4Off:], g.rng.Uint64()) // ports, sequence number
	case floodUDP:
		tp = g.udp
		f = tp.frame
		binary.BigEndian.PutUint32(f[l4Off:], uint32(r))
		for i := l4Off + 8; i < l4Off+8+floodUDPPayload; i += 8 {
			binary.BigEndian.PutUint64(f[i:], g.rng.Uint64())
		}
	case floodHello:
		tp = g.hello
		f = tp.frame
		binary.BigEndian.PutUint16(f[l4Off:], ephemeral(r))
		binary.BigEndian.PutUint64(f[l4Off+4:], g.rng.Uint64()) // sequence and acknowledgement numbers
	case floodQUIC:
		tp = g.quic
		f = tp.frame
		binary.BigEndian.PutUint16(f[l4Off:], ephemeral(r))
		binary.BigEndian.PutUint64(f[l4Off+8+6:], g.rng.Uint64()) // DCID
		for i := l4Off + 8 + 18; i < l4Off+8+18+quicVary; i += 8 {
			binary.BigEndian.PutUint64(f[i:], g.rng.Uint64())
		}
	}
	g.randAddr(f[ipSrc:])
	g.randAddr(f[ipSrc+4:])
	binary.BigEndian.PutUint16(f[ipIDOff:], uint16(r>>24))
	tp.finish()
	g.kinds[floodKindNames[kind]]++
	return g.write(f)
}

// run writes n frames: the flood, with a real contact every
// floodRealEvery frames (host and kind in turn).
func (g *floodGen) run(n int) error {
	next, e := 0, 0
	for g.total < n {
		if g.total >= next && n-g.total >= 16 {
			host, kind := e%5, (e/5)%realKinds
			frames, err := g.real.contact(host, kind, uint16(e))
			if err != nil {
				return err
			}
			for _, f := range frames {
				if err := g.write(f); err != nil {
					return err
				}
			}
			g.sent[kind]++
			g.perName[[2]string{floodHost(host).IP.String(), g.names[host][kind]}]++
			e++
			next += floodRealEvery
			continue
		}
		if err := g.flood(); err != nil {
			return err
		}
	}
	return nil
}

func (g *floodGen) sentByKind() map[string]int {
	m := map[string]int{}
	for k, n := range g.sent {
		m[realKindNames[k]] = n
	}
	return m
}

// floodResult is what one run gave.
type floodResult struct {
	summary string
	alerts  string // path
	wall    time.Duration
	maxRSS  int64 // bytes
	gen     *floodGen
}

// floodRun streams n packets through a FIFO into phonehome with the
// extra flags and waits for it to finish.
func floodRun(t *testing.T, bin, dir, name string, n int, flags ...string) *floodResult {
	t.Helper()
	fifo := filepath.Join(dir, name+".pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	alerts := filepath.Join(dir, name+".alerts.json")
	// A hang is a failure, not a test timeout: the run is killed after
	// a generous deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"run", "-r", fifo, "--storage.path", "", "--output", "ecs:" + alerts,
		"--alert.dedup-window", floodDedupWindow, "--log.level", "warn", "--observer.name", "flood-test"}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Open the FIFO's write end once phonehome has opened the read end
	// (ENXIO until then); give up if it exits first.
	var pipe *os.File
	for pipe == nil {
		p, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		switch {
		case err == nil:
			pipe = p
		case errors.Is(err, syscall.ENXIO):
			select {
			case err := <-done:
				t.Fatalf("phonehome exited before reading the FIFO: %v\n%s", err, stderr.String())
			case <-time.After(5 * time.Millisecond):
			}
		default:
			t.Fatal(err)
		}
	}
	bw := bufio.NewWriterSize(pipe, 1<<20)
	step := floodDuration / time.Duration(n)
	g := newFloodGen(t, bw, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), step, newRealContacts(t))
	genErr := g.run(n)
	if genErr == nil {
		genErr = bw.Flush()
	}
	genWall := time.Since(start)
	pipe.Close()
	runErr := <-done
	wall := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("phonehome killed after %s (hang?), %d of %d packets written; stderr:\n%s", wall.Round(time.Second), g.total, n, stderr.String())
	}
	if genErr != nil {
		t.Fatalf("writing the flood: %v (phonehome: %v)\n%s", genErr, runErr, stderr.String())
	}
	if runErr != nil {
		t.Fatalf("phonehome run: %v\n%s", runErr, stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatalf("no rusage for the child (%T)", cmd.ProcessState.SysUsage())
	}
	res := &floodResult{summary: stderr.String(), alerts: alerts, wall: wall, maxRSS: ru.Maxrss << 10, gen: g}
	t.Logf("%s: %d packets (%.1f GiB of frames; flood %v; real contacts %v), packet time %s",
		name, g.total, float64(g.bytes)/(1<<30), g.kinds, g.sentByKind(), floodDuration)
	t.Logf("%s: wall %s (generator done after %s), %.0f packets/s, peak RSS %.1f MiB, CPU user %s sys %s",
		name, wall.Round(time.Millisecond), genWall.Round(time.Millisecond), float64(g.total)/wall.Seconds(), float64(res.maxRSS)/(1<<20),
		time.Duration(ru.Utime.Nano()).Round(time.Millisecond), time.Duration(ru.Stime.Nano()).Round(time.Millisecond))
	return res
}

// floodStats are the summary's counters the test reads.
type floodStats struct {
	packets                                 int
	flowsCreated, flowsPeak, flowsRefused   int
	flowsEvicted                            int
	hellos, helloGathered, helloIncomplete  int
	quicInitials, quicHellos, quicUndecrypt int
	gatherRefused, streamStartLost          int
	contacts, alerts                        int
	outSent, outDropped, outFailed          int
	unseen                                  string // the names-unseen line, as printed
}

var floodSummaryLines = []struct {
	re     *regexp.Regexp
	fields func(s *floodStats) []*int
}{
	{regexp.MustCompile(`\n packets (\d+) `), func(s *floodStats) []*int { return []*int{&s.packets} }},
	{regexp.MustCompile(`\n flows (\d+) created, peak (\d+), (\d+) refused \(table full\)`), func(s *floodStats) []*int {
		return []*int{&s.flowsCreated, &s.flowsPeak, &s.flowsRefused}
	}},
	{regexp.MustCompile(`\n ClientHellos (\d+) \((\d+) gathered from several segments; (\d+) incomplete`), func(s *floodStats) []*int {
		return []*int{&s.hellos, &s.helloGathered, &s.helloIncomplete}
	}},
	{regexp.MustCompile(`\n QUIC (\d+) client Initial datagrams, (\d+) ClientHellos \((\d+) datagrams undecryptable`), func(s *floodStats) []*int {
		return []*int{&s.quicInitials, &s.quicHellos, &s.quicUndecrypt}
	}},
	{regexp.MustCompile(`\n matches (\d+) contacts, (\d+) alerts`), func(s *floodStats) []*int { return []*int{&s.contacts, &s.alerts} }},
	{regexp.MustCompile(`\n output ecs:\S+ (\d+) sent, \d+ retried, (\d+) dropped \(queue full\), (\d+) failed`), func(s *floodStats) []*int {
		return []*int{&s.outSent, &s.outDropped, &s.outFailed}
	}},
}

var unseenLine = regexp.MustCompile(`\n names unseen (.*)\n`)

// evictedLine: the flows line goes on with the flows evicted to make
// room for new ones.
var evictedLine = regexp.MustCompile(`\n flows \d+ created, [^\n]*?(\d+) evicted`)

// reassemblyLine is printed only when something was refused or lost.
var reassemblyLine = regexp.MustCompile(`\n reassembly (\d+) refused \(gathering memory spent\), (\d+) streams`)

func parseFloodSummary(t *testing.T, summary string) floodStats {
	t.Helper()
	var s floodStats
	sq := squash(summary)
	for _, l := range floodSummaryLines {
		m := l.re.FindStringSubmatch(sq)
		if m == nil {
			t.Fatalf("summary: no line matching %s:\n%s", l.re, summary)
		}
		for i, p := range l.fields(&s) {
			*p, _ = strconv.Atoi(m[i+1])
		}
	}
	if m := evictedLine.FindStringSubmatch(sq); m != nil {
		s.flowsEvicted, _ = strconv.Atoi(m[1])
	}
	if m := unseenLine.FindStringSubmatch(sq); m != nil {
		s.unseen = m[1]
	}
	if m := reassemblyLine.FindStringSubmatch(sq); m != nil {
		s.gatherRefused, _ = strconv.Atoi(m[1])
		s.streamStartLost, _ = strconv.Atoi(m[2])
	}
	return s
}

// floodAlerts counts the alerts per (source host, matched name) for the
// real hosts (10.9.0.0/24), and all alerts.
func floodAlerts(t *testing.T, path string) (map[[2]string]int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := map[[2]string]int{}
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		total++
		if !bytes.Contains(line, []byte(`"ip":"10.9.0.`)) {
			continue
		}
		var ev struct {
			Source struct {
				IP string `json:"ip"`
			} `json:"source"`
			Threat struct {
				Enrichments []struct {
					Matched struct {
						Atomic string `json:"atomic"`
					} `json:"matched"`
				} `json:"enrichments"`
			} `json:"threat"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("alert %d: %v", total, err)
		}
		if !strings.HasPrefix(ev.Source.IP, "10.9.0.") {
			continue
		}
		for _, e := range ev.Threat.Enrichments {
			found[[2]string{ev.Source.IP, e.Matched.Atomic}]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return found, total
}

// TestFlood streams a flood of random traffic (a SYN flood, small UDP
// datagrams, ClientHellos never completed, undecryptable QUIC Initials
// with random DCIDs), with real Kaspersky contacts from 5 internal hosts
// mixed in throughout, through a FIFO into `phonehome run`, once with the
// default caps and once with a small flow table. Each run must exit 0
// with its peak RSS under a bound derived from --flow.max, count the
// flood in its summary, and alert every real contact: every host with
// every name, as many times as it was sent.
func TestFlood(t *testing.T) {
	n := floodPackets
	if testing.Short() {
		n = floodPacketsShort
	}
	dir := t.TempDir()
	bin := buildPhonehome(t, dir, "")
	for _, tc := range []struct {
		name    string
		flowMax int
	}{
		{"defaults", defaultFlowMax},
		{"flow.max=10000", 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var flags []string
			if tc.flowMax != defaultFlowMax {
				flags = append(flags, "--flow.max", strconv.Itoa(tc.flowMax))
			}
			res := floodRun(t, bin, dir, strings.ReplaceAll(tc.name, "=", "-"), n, flags...)
			g := res.gen
			st := parseFloodSummary(t, res.summary)
			t.Logf("%s: flows %d created, peak %d, %d refused, %d evicted; ClientHellos %d (%d gathered, %d incomplete); reassembly %d refused, %d starts lost; QUIC %d Initials, %d undecryptable; matches %d contacts, %d alerts; output %d sent, %d dropped",
				tc.name, st.flowsCreated, st.flowsPeak, st.flowsRefused, st.flowsEvicted, st.hellos, st.helloGathered, st.helloIncomplete,
				st.gatherRefused, st.streamStartLost, st.quicInitials, st.quicUndecrypt, st.contacts, st.alerts, st.outSent, st.outDropped)
			t.Logf("%s: names unseen: %s", tc.name, st.unseen)

			if bound := floodRSSBound(tc.flowMax); res.maxRSS > bound {
				t.Errorf("peak RSS %.1f MiB, over the bound of %.0f MiB for --flow.max %d", float64(res.maxRSS)/(1<<20), float64(bound)/(1<<20), tc.flowMax)
			}
			if st.packets != g.total {
				t.Errorf("summary counts %d packets, %d were written", st.packets, g.total)
			}
			// The flood filled the table: new flows found it full
			// (and evicted older ones, or were refused), and flows
			// expired during the run (more created than the peak).
			if st.flowsPeak != tc.flowMax || st.flowsRefused+st.flowsEvicted == 0 {
				t.Errorf("flow table not filled by the flood: peak %d of %d, %d refused, %d evicted", st.flowsPeak, tc.flowMax, st.flowsRefused, st.flowsEvicted)
			}
			if st.flowsCreated <= st.flowsPeak {
				t.Errorf("no flow expired during the run: %d created, peak %d", st.flowsCreated, st.flowsPeak)
			}
			// Every cut hello is counted incomplete (with a flow when it
			// expires, without one at once).
			if cut := g.kinds[floodKindNames[floodHello]]; st.helloIncomplete < cut {
				t.Errorf("%d ClientHellos counted incomplete, %d cut ones were sent", st.helloIncomplete, cut)
			}
			// Every real two-segment hello was gathered.
			if st.helloGathered < g.sent[realTLS2] {
				t.Errorf("%d ClientHellos gathered from several segments, %d real ones were sent", st.helloGathered, g.sent[realTLS2])
			}
			quic := g.kinds[floodKindNames[floodQUIC]]
			if st.quicInitials != quic || st.quicUndecrypt == 0 || st.quicHellos != 0 {
				t.Errorf("QUIC: %d Initials counted (%d sent), %d undecryptable, %d hellos", st.quicInitials, quic, st.quicUndecrypt, st.quicHellos)
			}
			if st.outDropped != 0 || st.outFailed != 0 {
				t.Errorf("alert output: %d dropped, %d failed", st.outDropped, st.outFailed)
			}

			// Every real contact alerted, per host and name.
			found, total := floodAlerts(t, res.alerts)
			t.Logf("%s: %d alerts in the file, %d for the 5 real hosts", tc.name, total, sumCounts(found))
			var alerted [realKinds]int
			for i := range 5 {
				ip := floodHost(i).IP.String()
				for k := range realKinds {
					key := [2]string{ip, floodName(i, k)}
					sent, got := g.perName[key], found[key]
					if sent == 0 {
						t.Fatalf("%s %s: no contact generated", key[0], key[1])
					}
					switch {
					case got == 0:
						t.Errorf("host %s: %s never alerted (%d contacts sent)", key[0], key[1], sent)
					case got > sent:
						t.Errorf("host %s: %s alerted %d times for %d contacts", key[0], key[1], got, sent)
					}
					alerted[k] += min(got, sent)
					delete(found, key)
				}
			}
			var perKind []string
			for k := range realKinds {
				perKind = append(perKind, fmt.Sprintf("%s %d/%d", realKindNames[k], alerted[k], g.sent[k]))
				if alerted[k] < g.sent[k] {
					t.Errorf("%s: %d of %d real %s contacts not alerted (flow table %d/%d full, %d flows refused, %d evicted; %d gathers refused)",
						tc.name, g.sent[k]-alerted[k], g.sent[k], realKindNames[k], st.flowsPeak, tc.flowMax, st.flowsRefused, st.flowsEvicted, st.gatherRefused)
				}
			}
			t.Logf("%s: real contacts alerted / sent: %s", tc.name, strings.Join(perKind, ", "))
			for key, c := range found {
				t.Errorf("unexpected alert for a real host: %s %q (%d)", key[0], key[1], c)
			}
		})
	}
}

func sumCounts(m map[[2]string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// TestFloodGenerator checks the generator's frames: they decode, with
// valid checksums (the patched templates' as well as testcap's), and the
// real contacts come in whole. It also times the generator alone.
func TestFloodGenerator(t *testing.T) {
	var buf bytes.Buffer
	const n = 50_000
	g := newFloodGen(t, &buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), 10*time.Microsecond, newRealContacts(t))
	if err := g.run(n); err != nil {
		t.Fatal(err)
	}
	if g.total != n {
		t.Fatalf("%d frames written, want %d", g.total, n)
	}
	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var last time.Time
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			if i != n {
				t.Fatalf("read %d frames, want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ci.Timestamp.After(last) {
			t.Fatalf("frame %d: timestamp %s not after %s", i, ci.Timestamp, last)
		}
		last = ci.Timestamp
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		// Random ports make gopacket try application decoders (RADIUS…)
		// on random bytes: only the layers up to the transport count.
		if el := p.ErrorLayer(); el != nil && p.TransportLayer() == nil {
			t.Fatalf("frame %d: %v", i, el.Error())
		}
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			t.Fatalf("frame %d: not IPv4", i)
		}
		if fold(sum16(0, ip.Contents)) != 0 {
			t.Fatalf("frame %d: bad IPv4 header checksum", i)
		}
		switch l := p.TransportLayer().(type) {
		case *layers.TCP:
			if err := l.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			if err, res := l.VerifyChecksum(); err != nil || !res.Valid {
				t.Fatalf("frame %d: TCP checksum: %v %+v", i, err, res)
			}
			switch {
			case l.SYN && !l.ACK:
				kinds["syn"]++
			case len(l.Payload) == floodHelloCut:
				kinds["hello"]++
			}
		case *layers.UDP:
			if err := l.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			if err, res := l.VerifyChecksum(); err != nil || !res.Valid {
				t.Fatalf("frame %d: UDP checksum: %v %+v", i, err, res)
			}
			if len(l.Payload) == floodQUICDatagram {
				kinds["quic"]++
			}
		default:
			t.Fatalf("frame %d: no TCP or UDP", i)
		}
	}
	if kinds["quic"] != g.kinds[floodKindNames[floodQUIC]] || kinds["hello"] != g.kinds[floodKindNames[floodHello]] {
		t.Errorf("read %v, wrote %v", kinds, g.kinds)
	}

	// The generator's own speed, into io.Discard.
	const speedN = 1_000_000
	start := time.Now()
	g = newFloodGen(t, io.Discard, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), 10*time.Microsecond, newRealContacts(t))
	if err := g.run(speedN); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("generator: %d packets (%.0f MiB) in %s: %.0f packets/s", speedN, float64(g.bytes)/(1<<20), d.Round(time.Millisecond), speedN/d.Seconds())
}
