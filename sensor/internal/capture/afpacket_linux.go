//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
)

// afSource is one AF_PACKET TPACKET_V3 socket.
type afSource struct {
	iface  string
	member int
	tp     *afpacket.TPacket
	lt     layers.LinkType

	mu   sync.Mutex
	prev [3]uint32 // gopacket keeps 32-bit totals: they wrap
	acc  [3]uint64
}

// ARPHRD_* values (linux/if_arp.h) whose packets start with an Ethernet
// header on a packet socket.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
)

// linkOf tells how to open a packet socket on iface: SOCK_RAW with
// Ethernet frames on Ethernet-like devices, SOCK_DGRAM (network-layer
// packets, link type raw IP) on every other kind (tun, tunnels, PPP…).
func linkOf(iface string) (layers.LinkType, afpacket.OptSocketType, error) {
	if _, err := net.InterfaceByName(iface); err != nil {
		return 0, 0, fmt.Errorf("-i %s: %w", iface, ErrNoInterface)
	}
	b, err := os.ReadFile(filepath.Join(sysfsNet, iface, "type"))
	if err != nil {
		return layers.LinkTypeEthernet, afpacket.SocketRaw, nil
	}
	switch t, _ := strconv.Atoi(strings.TrimSpace(string(b))); t {
	case arphrdEther, arphrdLoopback:
		return layers.LinkTypeEthernet, afpacket.SocketRaw, nil
	default:
		return layers.LinkTypeRaw, afpacket.SocketDgram, nil
	}
}

func openAFPacket(cfg *LiveConfig) (_ []LiveSource, err error) {
	var out []LiveSource
	defer func() {
		if err != nil {
			for _, s := range out {
				s.Close()
			}
		}
	}()
	blocks := (cfg.RingSize + afBlockSize - 1) / afBlockSize
	for n, name := range cfg.Interfaces {
		lt, socktype, err := linkOf(name)
		if err != nil {
			return nil, err
		}
		filter, err := CompileFilter(cfg.Filter, lt, cfg.Snaplen)
		if err != nil {
			return nil, err
		}
		if filter == nil && cfg.Snaplen < DefaultSnaplen {
			filter = snaplenOnly(cfg.Snaplen)
		}
		for m := 0; m < cfg.Sockets; m++ {
			tp, err := afpacket.NewTPacket(
				afpacket.OptInterface(name),
				afpacket.TPacketVersion3,
				socktype,
				afpacket.OptBlockSize(afBlockSize),
				afpacket.OptFrameSize(afFrameSize),
				afpacket.OptNumBlocks(blocks),
				afpacket.OptBlockTimeout(cfg.BlockTimeout),
				afpacket.OptPollTimeout(cfg.BlockTimeout),
			)
			if err != nil {
				return nil, fmt.Errorf("-i %s: AF_PACKET socket: %w", name, explainErrno(err))
			}
			s := &afSource{iface: name, member: m, tp: tp, lt: lt}
			out = append(out, s)
			if filter != nil {
				if err := tp.SetBPF(filter); err != nil {
					return nil, fmt.Errorf("-i %s: %w: the kernel refused the program: %w", name, ErrBadFilter, err)
				}
			}
			if m == 0 && cfg.Promisc {
				if err := tp.SetPromiscuous(true); err != nil {
					return nil, fmt.Errorf("-i %s: promiscuous mode: %w", name, explainErrno(err))
				}
			}
			if cfg.Sockets > 1 {
				// HASH: the kernel's symmetric flow hash picks the socket, so
				// both directions of a flow reach the same worker. DEFRAG:
				// IP fragments are reassembled first, so a fragmented
				// datagram goes where its flow goes.
				group := uint16(cfg.FanoutGroup + n)
				if err := tp.SetFanout(afpacket.FanoutHash|afpacket.FanoutHashWithDefrag, group); err != nil {
					if errors.Is(err, syscall.EINVAL) {
						return nil, fmt.Errorf("-i %s: %w: group %d is in use by a socket on another interface or with another mode (another sensor?); choose another --capture.fanout-group", name, ErrFanoutGroup, group)
					}
					return nil, fmt.Errorf("-i %s: fanout group %d: %w", name, group, err)
				}
			}
		}
	}
	return out, nil
}

// explainErrno adds what to do about a missing privilege.
func explainErrno(err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w (live capture needs CAP_NET_RAW and CAP_NET_ADMIN: run as root, with --run-as to drop privileges once the sockets are open, or give the binary the capabilities: setcap cap_net_raw,cap_net_admin=eip phonehome)", err)
	}
	return err
}

func (s *afSource) Name() string {
	return fmt.Sprintf("afpacket:%s#%d", s.iface, s.member)
}
func (s *afSource) Interface() string { return s.iface }
func (s *afSource) Member() int       { return s.member }

func (s *afSource) Close() error {
	s.tp.Close()
	return nil
}

// ReadPacket returns the next packet; the data stays valid until the next
// call. ErrTimeout when none came within the block timeout.
func (s *afSource) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, afpacket.ErrTimeout) {
			return nil, ci, s.lt, ErrTimeout
		}
		return nil, ci, s.lt, fmt.Errorf("%s: %w", s.Name(), err)
	}
	return data, ci, s.lt, nil
}

// stats reads PACKET_STATISTICS; gopacket adds each reading (the kernel
// resets the counters when read) to the totals it returns.
func (s *afSource) stats() (LiveStats, error) {
	_, v3, err := s.tp.SocketStats()
	if err != nil {
		return LiveStats{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range [3]uint32{uint32(v3.Packets()), uint32(v3.Drops()), uint32(v3.QueueFreezes())} {
		s.acc[i] += uint64(v - s.prev[i]) // modulo 2^32
		s.prev[i] = v
	}
	return LiveStats{Interface: s.iface, Packets: s.acc[0], KernelDrops: s.acc[1], QueueFreezes: s.acc[2]}, nil
}
