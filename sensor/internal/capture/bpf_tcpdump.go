//go:build !pcap

package capture

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// tcpdumpPaths are tried when tcpdump is not on PATH (a service's PATH
// often lacks /usr/sbin).
var tcpdumpPaths = []string{"tcpdump", "/usr/bin/tcpdump", "/usr/sbin/tcpdump"}

// compileWithTcpdump compiles expr by running `tcpdump -ddd`, which uses
// libpcap's compiler without opening an interface.
func compileWithTcpdump(expr string, lt layers.LinkType, snaplen int) (Filter, error) {
	dlt := ""
	switch lt {
	case layers.LinkTypeEthernet:
		dlt = "EN10MB"
	case layers.LinkTypeRaw:
		dlt = "RAW"
	default:
		return nil, fmt.Errorf("%w: %q: link type %s not supported by the filter compiler", ErrBadFilter, expr, lt)
	}
	path := ""
	for _, p := range tcpdumpPaths {
		if found, err := exec.LookPath(p); err == nil {
			path = found
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("%w: %q: compiling a filter expression needs tcpdump (apt-get install tcpdump) or a binary built with libpcap (make build-pcap); "+
			"or give the compiled program: --capture.filter \"$(tcpdump -ddd -y %s '%s')\"", ErrBadFilter, expr, dlt, expr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-ddd", "-y", dlt, "-s", strconv.Itoa(snaplen), "--", expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		msg = strings.ReplaceAll(msg, "tcpdump: ", "")
		msg = strings.Join(strings.Fields(msg), " ")
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%w: %q: %s", ErrBadFilter, expr, msg)
	}
	f, err := ParseRawBPF(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("%q: output of %s -ddd: %w", expr, path, err)
	}
	return f, nil
}
