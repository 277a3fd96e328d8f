//go:build !linux

package capture

import "errors"

func openAFPacket(*LiveConfig) ([]LiveSource, error) {
	return nil, errors.New("--capture.method afpacket: AF_PACKET exists only on Linux; use --capture.method pcap")
}
