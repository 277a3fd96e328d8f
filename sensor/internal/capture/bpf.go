package capture

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// ErrBadFilter wraps every error about --capture.filter.
var ErrBadFilter = errors.New("bad capture filter")

// maxBPFInstructions is the kernel's limit (BPF_MAXINSNS).
const maxBPFInstructions = 4096

// Filter is a compiled classic BPF program, as attached to a socket.
type Filter []bpf.RawInstruction

// IsRawBPF tells whether s looks like a compiled program in `tcpdump -ddd`
// form rather than a filter expression: numbers only.
func IsRawBPF(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != ' ' && r != '\t' && r != '\n' && r != '\r' && r != ',' {
			return false
		}
	}
	return true
}

// ParseRawBPF reads a program in `tcpdump -ddd` form: the instruction
// count, then one "code jt jf k" line per instruction, in decimal. Lines
// may also be separated by commas (the form of iptables' bpf match:
// `tcpdump -ddd … | tr '\n' ','`).
func ParseRawBPF(s string) (Filter, error) {
	fields := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == ',' || r == '\r' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: empty program", ErrBadFilter)
	}
	n, err := strconv.Atoi(strings.TrimSpace(fields[0]))
	if err != nil {
		return nil, fmt.Errorf("%w: program: first line %q is not the instruction count", ErrBadFilter, fields[0])
	}
	if n != len(fields)-1 {
		return nil, fmt.Errorf("%w: program: says %d instructions, has %d", ErrBadFilter, n, len(fields)-1)
	}
	prog := make(Filter, 0, n)
	for i, line := range fields[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%w: program: instruction %d %q: want 4 numbers (code jt jf k)", ErrBadFilter, i, line)
		}
		var v [4]uint64
		for j, bits := range [4]int{16, 8, 8, 32} {
			if v[j], err = strconv.ParseUint(f[j], 10, bits); err != nil {
				return nil, fmt.Errorf("%w: program: instruction %d %q: %q is not a %d-bit number", ErrBadFilter, i, line, f[j], bits)
			}
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if err := prog.check(); err != nil {
		return nil, err
	}
	return prog, nil
}

// BPF instruction classes and fields (linux/filter.h).
const (
	bpfClass = 0x07
	bpfJmp   = 0x05
	bpfRet   = 0x06
	bpfOp    = 0xf0
	bpfJA    = 0x00
	bpfSrc   = 0x08 // BPF_X when set
	bpfRval  = 0x18
	bpfK     = 0x00
)

// check does what the kernel's checker does about the program's shape:
// size, jumps inside the program, a return at the end.
func (f Filter) check() error {
	if len(f) == 0 || len(f) > maxBPFInstructions {
		return fmt.Errorf("%w: program: %d instructions (1 to %d)", ErrBadFilter, len(f), maxBPFInstructions)
	}
	for pc, ins := range f {
		if ins.Op&bpfClass != bpfJmp {
			continue
		}
		if ins.Op&bpfOp == bpfJA {
			if uint64(pc)+1+uint64(ins.K) >= uint64(len(f)) {
				return fmt.Errorf("%w: program: instruction %d jumps past the end", ErrBadFilter, pc)
			}
			continue
		}
		if pc+1+int(ins.Jt) >= len(f) || pc+1+int(ins.Jf) >= len(f) {
			return fmt.Errorf("%w: program: instruction %d jumps past the end", ErrBadFilter, pc)
		}
	}
	if f[len(f)-1].Op&bpfClass != bpfRet {
		return fmt.Errorf("%w: program: the last instruction is not a return", ErrBadFilter)
	}
	return nil
}

// clampSnaplen makes every constant return keep at most snaplen bytes:
// the return value of a socket filter is the number of bytes kept, which
// is how the snap length is applied in the kernel (as libpcap does).
func (f Filter) clampSnaplen(snaplen int) Filter {
	out := append(Filter(nil), f...)
	for i, ins := range out {
		if ins.Op&bpfClass == bpfRet && ins.Op&bpfRval == bpfK && ins.K > uint32(snaplen) {
			out[i].K = uint32(snaplen)
		}
	}
	return out
}

// snaplenOnly is the program that keeps every packet, cut to snaplen.
func snaplenOnly(snaplen int) Filter {
	return Filter{{Op: bpfRet | bpfK, K: uint32(snaplen)}}
}

// CompileFilter compiles a filter for link type lt: a `tcpdump -ddd`
// program is taken as it is; an expression is compiled by libpcap in a
// binary built with the pcap tag, otherwise by running tcpdump (-ddd),
// which must be on PATH. Every return is clamped to snaplen. An empty
// filter gives nil.
func CompileFilter(expr string, lt layers.LinkType, snaplen int) (Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	var (
		f   Filter
		err error
	)
	if IsRawBPF(expr) {
		f, err = ParseRawBPF(expr)
	} else {
		f, err = compileExpr(expr, lt, snaplen)
	}
	if err != nil {
		return nil, err
	}
	return f.clampSnaplen(snaplen), nil
}
