// Package testcap writes pcap captures made of real protocol bytes, for tests
// and demos of the sensor.
//
// A Writer wraps a pcapgo.Writer (Ethernet link type, microsecond
// timestamps, snap length 65536) and offers one method per kind of exchange:
// a raw frame, a DNS query and answer over UDP, DNS over TCP, and a whole TCP
// connection (three-way handshake, client segments, server reply, FIN/ACK
// close) into which callers put a TLS ClientHello from ClientHello or an
// HTTP/1.1 request head from HTTPRequest. Frames are serialized with gopacket
// (Ethernet, 802.1Q when a Host has a VLAN, IPv4 or IPv6 by address family,
// TCP or UDP) with lengths and checksums computed, and TCP sequence and
// acknowledgement numbers consistent across each connection.
//
// Everything a Writer produces is deterministic: timestamps come from a
// packet clock (the start time given to NewWriter, advanced by a fixed step
// per frame and by Advance), never from the wall clock; ephemeral ports, TCP
// initial sequence numbers and IPv4 identifiers come from counters. The only
// nondeterministic bytes are the random fields crypto/tls puts in a
// ClientHello (random, session id, key shares).
//
// The DNS helpers (Query, Reply, NXDomain, A, CNAME) build github.com/miekg/dns
// messages; names are taken as given (dns.Fqdn adds the root), so a name may
// carry control bytes or quotes to test escaping: they are packed into the
// wire format as raw label bytes.
//
// Errors are returned, never logged; the helpers that return a value without
// an error (A, CNAME, Query, ...) panic only on inputs that can only be
// programming errors, such as an unparsable IP literal.
package testcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// SnapLen is the snap length written in the pcap file header.
const SnapLen = 65536

// DefaultStep is the packet clock's step: how much later each frame is
// stamped than the one before. Change it with SetStep.
const DefaultStep = time.Millisecond

// Ephemeral ports are taken in order from this range, wrapping around.
const (
	FirstEphemeralPort = 49152
	LastEphemeralPort  = 65535
)

// Maximum segment sizes used to cut server replies and DNS-over-TCP
// messages (1500-byte MTU minus IP and TCP headers).
const (
	MSS4 = 1460
	MSS6 = 1440
)

// Host is one end of an exchange.
type Host struct {
	IP netip.Addr
	// MAC is the host's Ethernet address as seen on the captured link. For a
	// host beyond a router, give the router's MAC. Nil means a locally
	// administered address derived from IP (02:00 followed by the last four
	// address bytes).
	MAC net.HardwareAddr
	// VLAN is the 802.1Q VLAN id of the host's access link, 0 when untagged.
	// A frame is tagged with its source's VLAN, or else its destination's,
	// so that both directions of an exchange with a tagged host carry the
	// tag, as on a trunk port that sees the client's VLAN.
	VLAN uint16
}

// NewHost returns a Host for an IP literal with a MAC derived from the
// address (see Host.MAC). It panics if ip does not parse.
func NewHost(ip string, vlan uint16) Host {
	return Host{IP: netip.MustParseAddr(ip), VLAN: vlan}
}

func (h Host) mac() net.HardwareAddr {
	if len(h.MAC) != 0 {
		return h.MAC
	}
	a := h.IP.As16()
	return net.HardwareAddr{0x02, 0x00, a[12], a[13], a[14], a[15]}
}

// Writer writes a pcap capture. It is not safe for concurrent use.
type Writer struct {
	pw    *pcapgo.Writer
	now   time.Time
	step  time.Duration
	port  uint16 // next ephemeral port
	conns uint32 // TCP connections opened, seeds initial sequence numbers
	ipID  uint16
	n     int
	buf   gopacket.SerializeBuffer
}

// NewWriter writes the pcap file header (Ethernet, microsecond resolution)
// to w and returns a Writer whose packet clock starts at start.
func NewWriter(w io.Writer, start time.Time) (*Writer, error) {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(SnapLen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("testcap: pcap header: %w", err)
	}
	return &Writer{
		pw:   pw,
		now:  start,
		step: DefaultStep,
		port: FirstEphemeralPort,
		ipID: 0x1000,
		buf:  gopacket.NewSerializeBuffer(),
	}, nil
}

// Now returns the timestamp the next frame will get.
func (w *Writer) Now() time.Time { return w.now }

// Advance moves the packet clock forward by d (a negative d is ignored).
func (w *Writer) Advance(d time.Duration) {
	if d > 0 {
		w.now = w.now.Add(d)
	}
}

// SetStep sets how far the clock moves after each frame (negative means 0).
func (w *Writer) SetStep(d time.Duration) { w.step = max(d, 0) }

// Packets returns the number of frames written so far.
func (w *Writer) Packets() int { return w.n }

// EphemeralPort returns the next client port from the ephemeral range
// (49152-65535, in order, wrapping). DNS and DNSTCP take theirs from here, as
// does TCPSession when given source port 0.
func (w *Writer) EphemeralPort() uint16 {
	p := w.port
	if w.port == LastEphemeralPort {
		w.port = FirstEphemeralPort
	} else {
		w.port++
	}
	return p
}

// Frame writes one raw frame stamped with the packet clock, then advances
// the clock by the step.
func (w *Writer) Frame(data []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: w.now, CaptureLength: len(data), Length: len(data)}
	if len(data) > SnapLen {
		ci.CaptureLength = SnapLen
		data = data[:SnapLen]
	}
	if err := w.pw.WritePacket(ci, data); err != nil {
		return fmt.Errorf("testcap: write packet: %w", err)
	}
	w.now = w.now.Add(w.step)
	w.n++
	return nil
}

var errFamily = errors.New("testcap: client and server are not of the same address family")

// checkPair validates the two ends of an exchange.
func checkPair(a, b Host) error {
	for _, h := range []Host{a, b} {
		if !h.IP.IsValid() {
			return errors.New("testcap: host without an IP address")
		}
		if h.VLAN > 4094 {
			return fmt.Errorf("testcap: VLAN id %d out of range", h.VLAN)
		}
		if len(h.MAC) != 0 && len(h.MAC) != 6 {
			return fmt.Errorf("testcap: MAC %v is not 6 bytes", h.MAC)
		}
	}
	if a.IP.Unmap().Is4() != b.IP.Unmap().Is4() {
		return errFamily
	}
	return nil
}

// ip writes one IP packet carrying l4 (a *layers.TCP or *layers.UDP) and
// payload from src to dst.
func (w *Writer) ip(src, dst Host, l4 gopacket.SerializableLayer, payload []byte) error {
	eth := &layers.Ethernet{SrcMAC: src.mac(), DstMAC: dst.mac()}
	var (
		netLayer gopacket.NetworkLayer
		ipLayer  gopacket.SerializableLayer
		etype    layers.EthernetType
		proto    layers.IPProtocol
	)
	switch l4.(type) {
	case *layers.TCP:
		proto = layers.IPProtocolTCP
	case *layers.UDP:
		proto = layers.IPProtocolUDP
	default:
		return fmt.Errorf("testcap: unsupported transport layer %T", l4)
	}
	s, d := src.IP.Unmap(), dst.IP.Unmap()
	if s.Is4() {
		ip4 := &layers.IPv4{
			Version:  4,
			TTL:      64,
			Id:       w.ipID,
			Flags:    layers.IPv4DontFragment,
			Protocol: proto,
			SrcIP:    s.AsSlice(),
			DstIP:    d.AsSlice(),
		}
		w.ipID++
		netLayer, ipLayer, etype = ip4, ip4, layers.EthernetTypeIPv4
	} else {
		ip6 := &layers.IPv6{
			Version:    6,
			HopLimit:   64,
			NextHeader: proto,
			SrcIP:      s.AsSlice(),
			DstIP:      d.AsSlice(),
		}
		netLayer, ipLayer, etype = ip6, ip6, layers.EthernetTypeIPv6
	}
	switch t := l4.(type) {
	case *layers.TCP:
		if err := t.SetNetworkLayerForChecksum(netLayer); err != nil {
			return err
		}
	case *layers.UDP:
		if err := t.SetNetworkLayerForChecksum(netLayer); err != nil {
			return err
		}
	}
	stack := make([]gopacket.SerializableLayer, 0, 5)
	vlan := src.VLAN
	if vlan == 0 {
		vlan = dst.VLAN
	}
	if vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		stack = append(stack, eth, &layers.Dot1Q{VLANIdentifier: vlan, Type: etype})
	} else {
		eth.EthernetType = etype
		stack = append(stack, eth)
	}
	stack = append(stack, ipLayer, l4, gopacket.Payload(payload))
	if err := w.buf.Clear(); err != nil {
		return err
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(w.buf, opts, stack...); err != nil {
		return fmt.Errorf("testcap: serialize: %w", err)
	}
	return w.Frame(w.buf.Bytes())
}

// UDP writes one UDP datagram from src:sport to dst:dport.
func (w *Writer) UDP(src, dst Host, sport, dport uint16, payload []byte) error {
	if err := checkPair(src, dst); err != nil {
		return err
	}
	return w.ip(src, dst, &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload)
}

// tcpConn is the state of one TCP connection being written.
type tcpConn struct {
	w            *Writer
	client       Host
	server       Host
	cport, sport uint16
	cseq, sseq   uint32 // next sequence number each side sends
	mss          int
}

// Window sizes: the SYNs advertise 64240 with window scale 8; later
// segments advertise 502 and 501 (×256).
const (
	synWindow    = 64240
	clientWindow = 502
	serverWindow = 501
	windowShift  = 8
)

func (w *Writer) newConn(client, server Host, cport, sport uint16) *tcpConn {
	w.conns++
	n := w.conns
	c := &tcpConn{w: w, client: client, server: server, cport: cport, sport: sport, mss: MSS4}
	if !client.IP.Unmap().Is4() {
		c.mss = MSS6
	}
	// Deterministic, well-spread initial sequence numbers.
	c.cseq = n*0x9e3779b1 + 0x01000193
	c.sseq = n*0x85ebca77 ^ 0xc2b2ae3d
	return c
}

// segment writes one segment. flags: S(YN) A(CK) P(SH) F(IN).
func (c *tcpConn) segment(fromClient bool, syn, ack, psh, fin bool, payload []byte) error {
	t := &layers.TCP{SYN: syn, ACK: ack, PSH: psh, FIN: fin}
	src, dst := c.server, c.client
	seq, peer := &c.sseq, c.cseq
	t.SrcPort, t.DstPort = layers.TCPPort(c.sport), layers.TCPPort(c.cport)
	t.Window = serverWindow
	if fromClient {
		src, dst = c.client, c.server
		seq, peer = &c.cseq, c.sseq
		t.SrcPort, t.DstPort = layers.TCPPort(c.cport), layers.TCPPort(c.sport)
		t.Window = clientWindow
	}
	t.Seq = *seq
	if ack {
		t.Ack = peer
	}
	if syn {
		t.Window = synWindow
		mss := make([]byte, 2)
		binary.BigEndian.PutUint16(mss, uint16(c.mss))
		t.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: mss},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{windowShift}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		}
	}
	*seq += uint32(len(payload))
	if syn || fin {
		*seq++
	}
	return c.w.ip(src, dst, t, payload)
}

func (c *tcpConn) open() error {
	if err := c.segment(true, true, false, false, false, nil); err != nil {
		return err
	}
	if err := c.segment(false, true, true, false, false, nil); err != nil {
		return err
	}
	return c.segment(true, false, true, false, false, nil)
}

// data writes payload from one side, cut into segments of at most limit
// bytes (limit <= 0: one segment).
func (c *tcpConn) data(fromClient bool, payload []byte, limit int) error {
	for _, seg := range Segments(payload, limit) {
		if err := c.segment(fromClient, false, true, true, false, seg); err != nil {
			return err
		}
	}
	return nil
}

func (c *tcpConn) ack(fromClient bool) error {
	return c.segment(fromClient, false, true, false, false, nil)
}

// close writes the client's FIN, the server's FIN and the client's last ACK.
func (c *tcpConn) close() error {
	if err := c.segment(true, false, true, false, true, nil); err != nil {
		return err
	}
	if err := c.segment(false, false, true, false, true, nil); err != nil {
		return err
	}
	return c.ack(true)
}

// TCPSession writes one TCP connection from client:sport to server:dport
// (sport 0 takes the next ephemeral port): the three-way handshake, each
// non-empty element of clientSegs as one PSH/ACK segment (not cut, whatever
// its size: use Segments to cut at an MSS), then the serverReply cut into
// MSS-sized segments and acknowledged by the client (or, when serverReply is
// empty, a bare ACK from the server), and finally a FIN/ACK exchange started
// by the client. Sequence and acknowledgement numbers are consistent
// throughout.
func (w *Writer) TCPSession(client, server Host, sport, dport uint16, clientSegs [][]byte, serverReply []byte) error {
	if err := checkPair(client, server); err != nil {
		return err
	}
	if sport == 0 {
		sport = w.EphemeralPort()
	}
	c := w.newConn(client, server, sport, dport)
	if err := c.open(); err != nil {
		return err
	}
	sent := false
	for _, seg := range clientSegs {
		if len(seg) == 0 {
			continue
		}
		if err := c.data(true, seg, 0); err != nil {
			return err
		}
		sent = true
	}
	if len(serverReply) > 0 {
		if err := c.data(false, serverReply, c.mss); err != nil {
			return err
		}
		if err := c.ack(true); err != nil {
			return err
		}
	} else if sent {
		if err := c.ack(false); err != nil {
			return err
		}
	}
	return c.close()
}

// Segments cuts b into pieces of at most size bytes (the last may be
// shorter). The pieces alias b. A size <= 0 returns b whole; an empty b
// returns nil.
func Segments(b []byte, size int) [][]byte {
	if len(b) == 0 {
		return nil
	}
	if size <= 0 || len(b) <= size {
		return [][]byte{b}
	}
	out := make([][]byte, 0, (len(b)+size-1)/size)
	for len(b) > size {
		out = append(out, b[:size:size])
		b = b[size:]
	}
	return append(out, b)
}
