//go:build !pcap

package capture

import "github.com/gopacket/gopacket/layers"

// HavePcap tells whether this binary was built with libpcap (the pcap
// build tag).
const HavePcap = false

func openPcap(*LiveConfig) ([]LiveSource, error) { return nil, ErrNoLibpcap }

// compileExpr compiles a filter expression with tcpdump: this binary has
// no libpcap of its own.
func compileExpr(expr string, lt layers.LinkType, snaplen int) (Filter, error) {
	return compileWithTcpdump(expr, lt, snaplen)
}
