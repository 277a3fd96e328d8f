//go:build !pcap

package capture

import (
	"errors"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

func TestCompileWithoutTcpdump(t *testing.T) {
	old := tcpdumpPaths
	tcpdumpPaths = []string{"/nonexistent/tcpdump"}
	defer func() { tcpdumpPaths = old }()
	_, err := CompileFilter("udp port 53", layers.LinkTypeEthernet, 65535)
	if err == nil || !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), "tcpdump -ddd") {
		t.Errorf("%v", err)
	}
}
