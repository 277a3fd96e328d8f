//go:build pcap

package capture

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// HavePcap tells whether this binary was built with libpcap (the pcap
// build tag).
const HavePcap = true

// dltRaw is DLT_RAW on Linux (LINKTYPE_RAW is 101).
const dltRaw layers.LinkType = 12

// compileExpr compiles a filter expression with libpcap's compiler.
func compileExpr(expr string, lt layers.LinkType, snaplen int) (Filter, error) {
	if lt == layers.LinkTypeRaw {
		lt = dltRaw // libpcap wants the DLT, not the LINKTYPE
	}
	ins, err := pcap.CompileBPFFilter(lt, snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %s", ErrBadFilter, expr, strings.TrimPrefix(err.Error(), "can't parse filter expression: "))
	}
	f := make(Filter, len(ins))
	for i, in := range ins {
		f[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return f, nil
}

// pcapSource is one libpcap handle on one interface.
type pcapSource struct {
	iface string
	h     *pcap.Handle
	lt    layers.LinkType

	mu   sync.Mutex
	prev [3]uint32 // libpcap's counters are 32-bit: they wrap
	acc  [3]uint64
}

func openPcap(cfg *LiveConfig) ([]LiveSource, error) {
	var out []LiveSource
	fail := func(err error) ([]LiveSource, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	for _, name := range cfg.Interfaces {
		s, err := openPcapOne(cfg, name)
		if err != nil {
			return fail(err)
		}
		out = append(out, s)
	}
	return out, nil
}

func openPcapOne(cfg *LiveConfig, name string) (*pcapSource, error) {
	in, err := pcap.NewInactiveHandle(name)
	if err != nil {
		return nil, fmt.Errorf("-i %s: %w", name, err)
	}
	defer in.CleanUp()
	for _, err := range []error{
		in.SetSnapLen(cfg.Snaplen),
		in.SetPromisc(cfg.Promisc),
		in.SetTimeout(cfg.BlockTimeout),
		in.SetBufferSize(cfg.RingSize),
	} {
		if err != nil {
			return nil, fmt.Errorf("-i %s: %w", name, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		if strings.Contains(err.Error(), "No Such Device") || strings.Contains(err.Error(), "No such device") {
			return nil, fmt.Errorf("-i %s: %w", name, ErrNoInterface)
		}
		return nil, fmt.Errorf("-i %s: libpcap: %w", name, err)
	}
	s := &pcapSource{iface: name, h: h, lt: h.LinkType()}
	if f := strings.TrimSpace(cfg.Filter); f != "" {
		if IsRawBPF(f) {
			prog, err := ParseRawBPF(f)
			if err == nil {
				prog = prog.clampSnaplen(cfg.Snaplen)
				ins := make([]pcap.BPFInstruction, len(prog))
				for i, r := range prog {
					ins[i] = pcap.BPFInstruction{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
				}
				err = h.SetBPFInstructionFilter(ins)
			}
			if err != nil {
				h.Close()
				if !errors.Is(err, ErrBadFilter) {
					err = fmt.Errorf("%w: %w", ErrBadFilter, err)
				}
				return nil, fmt.Errorf("-i %s: %w", name, err)
			}
		} else if err := h.SetBPFFilter(f); err != nil {
			h.Close()
			return nil, fmt.Errorf("-i %s: %w: %q: %s", name, ErrBadFilter, f, strings.TrimPrefix(err.Error(), "can't parse filter expression: "))
		}
	}
	return s, nil
}

func (s *pcapSource) Name() string      { return "pcap:" + s.iface }
func (s *pcapSource) Interface() string { return s.iface }
func (s *pcapSource) Member() int       { return 0 }

func (s *pcapSource) Close() error {
	s.h.Close()
	return nil
}

func (s *pcapSource) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.h.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, pcap.NextErrorTimeoutExpired) {
			return nil, ci, s.lt, ErrTimeout
		}
		return nil, ci, s.lt, fmt.Errorf("%s: %w", s.Name(), err)
	}
	return data, ci, s.lt, nil
}

func (s *pcapSource) stats() (LiveStats, error) {
	st, err := s.h.Stats()
	if err != nil {
		return LiveStats{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range [3]uint32{uint32(st.PacketsReceived), uint32(st.PacketsDropped), uint32(st.PacketsIfDropped)} {
		s.acc[i] += uint64(v - s.prev[i]) // modulo 2^32
		s.prev[i] = v
	}
	return LiveStats{Interface: s.iface, Packets: s.acc[0], KernelDrops: s.acc[1], IfaceDrops: s.acc[2]}, nil
}
