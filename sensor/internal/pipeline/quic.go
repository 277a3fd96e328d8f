package pipeline

import (
	"github.com/phonehome-sensor/phonehome/sensor/internal/extract"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
)

const (
	// maxQUIC bounds the QUIC connections whose client Initials one
	// worker follows at once; each holds a CRYPTO buffer.
	maxQUIC = 4096
	// quicKeyCacheSize bounds the Initial keys a worker remembers (by
	// DCID) of connections whose Initials opened: a few hundred recent
	// connections, so that their later datagrams derive nothing.
	quicKeyCacheSize = 256
)

// quicFlow is the per-flow state of a QUIC connection (flow.Flow.Aux).
type quicFlow struct {
	a        extract.QUICAssembler
	hellos   int  // ClientHellos reported on this flow
	unseen   bool // its unseen reason was counted already
	tooBig   bool
	initials int // client datagrams with Initials
}

// quicDatagram reads a client datagram that starts with a QUIC long
// header Initial, on any port.
func (w *worker) quicDatagram(f *flow.Flow, dir int, payload []byte) {
	w.c.QUICInitials++
	if f != nil && dir != flow.FromClient {
		return // server Initials carry the server's flight, not the hello
	}
	var st *quicFlow
	if f != nil {
		st, _ = f.Aux.(*quicFlow)
	}
	if st == nil && (f == nil || w.quicCount >= maxQUIC) {
		// No state for it: a hello that fits one datagram can still be
		// read (browsers' usually do).
		a := w.quicAssembler(&w.quicScratch)
		a.Reset()
		w.quicAdd(a, nil, payload)
		if w.quicHello(a) == 0 {
			w.c.UnseenQUIC[UnseenNoState]++
		}
		return
	}
	if st == nil {
		if n := len(w.quicPool); n > 0 {
			st, w.quicPool = w.quicPool[n-1], w.quicPool[:n-1]
			st.a.Reset()
			*st = quicFlow{a: st.a}
		} else {
			st = &quicFlow{}
		}
		w.quicAssembler(&st.a)
		// An earlier datagram of this flow was undecryptable and
		// counted so; its state was let go (below).
		st.unseen = f.Kind == kindQUICUnseen
		w.quicCount++
		f.Aux = st
	}
	st.initials++
	if !w.quicAdd(&st.a, st, payload) {
		if st.hellos == 0 && st.a.Stats().Decrypted == 0 && st.unseen {
			// Nothing opened on this flow (a flood of random Initials
			// looks like this): keep no state, only the fact that its
			// unseen name was counted.
			f.Kind = kindQUICUnseen
			w.quicRelease(f, st)
		}
		return
	}
	st.hellos += w.quicHello(&st.a)
	if st.a.TooBig() && !st.tooBig {
		st.tooBig = true
		w.c.UnseenQUIC[UnseenCap]++
		st.unseen = true
	}
}

// quicAssembler readies an assembler of this worker: hello cap and the
// worker's key cache.
func (w *worker) quicAssembler(a *extract.QUICAssembler) *extract.QUICAssembler {
	if w.quicKeys == nil {
		w.quicKeys = extract.NewQUICKeyCache(quicKeyCacheSize)
	}
	a.MaxCryptoData, a.Keys = w.cfg.HelloMax, w.quicKeys
	return a
}

// quicAdd feeds a datagram to an assembler and counts what went wrong,
// once per flow. It reports whether the datagram was taken.
func (w *worker) quicAdd(a *extract.QUICAssembler, st *quicFlow, payload []byte) bool {
	switch err := a.AddDatagram(payload); err {
	case nil:
		return true
	case extract.ErrNotQUIC:
		return false
	case extract.ErrQUICUndecryptable:
		w.c.QUICUndecryptable++
		if st == nil || (!st.unseen && st.hellos == 0) {
			w.c.UnseenQUIC[UnseenUndecryptable]++
			if st != nil {
				st.unseen = true
			}
		}
		return false
	default:
		w.c.QUICMalformed++
		if st == nil || (!st.unseen && st.hellos == 0) {
			w.c.UnseenQUIC[UnseenMalformed]++
			if st != nil {
				st.unseen = true
			}
		}
		return true
	}
}

// quicHello reports the ClientHello an assembler completed, if any, and
// returns how many it reported (0 or 1).
func (w *worker) quicHello(a *extract.QUICAssembler) int {
	if chlo := a.CHLO(); chlo != nil {
		// Q050: a QUIC-crypto CHLO, not a TLS hello; its SNI tag is read.
		defer a.Done()
		sni, err := extract.ParseGQUICCHLOMessage(chlo)
		if err != nil {
			w.c.QUICMalformed++
			w.c.UnseenQUIC[UnseenMalformed]++
			return 0
		}
		w.c.QUICHellos++
		w.reportCHLO(sni, a.VersionName())
		return 1
	}
	msg := a.ClientHello()
	if msg == nil {
		return 0
	}
	defer a.Done()
	w.hello.Reset()
	if err := extract.ParseClientHelloMessage(msg, &w.hello); err != nil {
		w.c.QUICMalformed++
		w.c.UnseenQUIC[UnseenMalformed]++
		return 0
	}
	w.c.QUICHellos++
	w.reportHello(&w.hello, "quic", "udp", &w.c.UnseenQUIC, a.VersionName())
	return 1
}

// gquicDatagram reads a Google QUIC (Q0xx) client hello, whose CHLO and
// SNI tag are in clear.
func (w *worker) gquicDatagram(f *flow.Flow, dir int, payload []byte) {
	sni, version, err := extract.ParseGQUICCHLO(payload)
	if err != nil {
		return
	}
	w.c.QUICInitials++
	w.c.QUICHellos++
	w.reportCHLO(sni, gquicVersionName(version))
}

// reportCHLO reports a Google QUIC CHLO's SNI as a ClientHello with one
// host_name entry.
func (w *worker) reportCHLO(sni []byte, version string) {
	var h extract.ClientHello
	h.SNI = sni
	if len(sni) > 0 {
		h.ServerNameList = append(append(w.gquicNames[:0], 0, byte(len(sni)>>8), byte(len(sni))), sni...)
		w.gquicNames = h.ServerNameList
		h.ServerNames = 1
	}
	w.reportHello(&h, "quic", "udp", &w.c.UnseenQUIC, version)
}

func gquicVersionName(v uint32) string {
	b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	for _, c := range b {
		if c < '0' || c > 'Z' {
			return "gquic"
		}
	}
	return string(b[:])
}

// quicEnded accounts for a QUIC flow that expires.
func (w *worker) quicEnded(f *flow.Flow) {
	st, _ := f.Aux.(*quicFlow)
	if st == nil {
		return
	}
	if st.hellos == 0 && !st.unseen {
		w.c.UnseenQUIC[UnseenGap]++
	}
	w.quicRelease(f, st)
}

// quicRelease takes the QUIC state off a flow and pools it.
func (w *worker) quicRelease(f *flow.Flow, st *quicFlow) {
	f.Aux = nil
	w.quicCount--
	st.a.Reset()
	if len(w.quicPool) < 64 {
		w.quicPool = append(w.quicPool, st)
	}
}
