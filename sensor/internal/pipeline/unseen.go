package pipeline

// Unseen is why the name of a ClientHello (TLS or QUIC) could not be
// recovered. The counters live here, in one place, so that the summary
// and the metrics tell the same story about the sensor's blind spots.
type Unseen uint8

// Reasons a name was not seen.
const (
	// UnseenCap: the hello did not fit the reassembly buffer cap.
	UnseenCap Unseen = iota
	// UnseenGap: a segment or CRYPTO frame never arrived (lost, not
	// captured, or the flow ended first).
	UnseenGap
	// UnseenUndecryptable: a QUIC Initial whose keys or version are
	// unknown, or that failed authentication.
	UnseenUndecryptable
	// UnseenEncrypted: ECH (or draft ESNI) hides the real name; only
	// the outer, public name was on the wire.
	UnseenEncrypted
	// UnseenNoSNI: a complete hello without a server_name extension
	// (IP-literal connections, some malware, old clients).
	UnseenNoSNI
	// UnseenMalformed: the hello or Initial did not parse.
	UnseenMalformed
	// UnseenNoState: the flow or reassembly tables were full, so a
	// hello spanning several packets could not be followed.
	UnseenNoState
	numUnseen
)

var unseenNames = [numUnseen]string{"buffer_cap", "missing_data", "undecryptable", "encrypted", "no_sni", "malformed", "no_state"}

// String returns the reason as used in the summary and as a metric label
// value (a fixed set: never a wire string).
func (u Unseen) String() string {
	if u < numUnseen {
		return unseenNames[u]
	}
	return "unknown"
}

// NumUnseen is the number of reasons.
const NumUnseen = int(numUnseen)

// UnseenCounts counts unseen names by reason for one protocol.
type UnseenCounts [numUnseen]uint64

// Total is the sum over reasons.
func (u *UnseenCounts) Total() uint64 {
	var n uint64
	for _, v := range u {
		n += v
	}
	return n
}

func (u *UnseenCounts) add(o *UnseenCounts) {
	for i := range u {
		u[i] += o[i]
	}
}
