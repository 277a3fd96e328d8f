package syslog

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// alive tells whether a stream connection is still open. A receiver that
// went away (restarted, say) has sent a FIN, and the first write on such a
// connection still succeeds: its data is lost when the RST comes back. A
// syslog receiver never sends anything, so a peek that finds the end of
// the stream or an error tells us to reconnect first. UDP is not checked:
// its ICMP errors fail the next write, which is how a dead receiver shows.
func alive(c net.Conn) bool {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	sc, ok := raw.(syscall.Conn)
	if !ok || raw.LocalAddr().Network() != "tcp" {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var perr error
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	}); err != nil {
		return false
	}
	switch {
	case errors.Is(perr, syscall.EAGAIN):
		return true // nothing to read: open
	case perr != nil || n == 0:
		return false // reset, or the end of the stream
	}
	return drain(c)
}

// drain reads what the receiver sent (TLS 1.3 session tickets, which
// come after the handshake), so that a FIN behind them is seen.
func drain(c net.Conn) bool {
	defer c.SetReadDeadline(time.Time{})
	c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
}
