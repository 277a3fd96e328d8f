package pipeline

import "sync"

// ECHNames is the set of ECH public names the sensor knows: built in,
// and learned from the ech parameter of DNS HTTPS/SVCB answers. Every
// Chrome and Firefox ClientHello carries an encrypted_client_hello
// extension — a GREASE one, with the real name in server_name, when the
// browser has no ECH config for the site — and the two cannot be told
// apart on the wire. A hello whose server_name is a known public name is
// real ECH (the destination is hidden behind it); otherwise the name is
// taken as the destination. Shared by the workers (a hello's flow and
// the DNS answer that taught the name may be in different workers);
// bounded.
type ECHNames struct {
	mu    sync.RWMutex
	names map[string]struct{}
	max   int
	// Dropped counts names not learned because the set was full.
	Dropped uint64
}

// builtinECHPublicNames are public names of large ECH deployments.
var builtinECHPublicNames = []string{"cloudflare-ech.com"}

// NewECHNames returns a set holding the built-in names, bounded at max
// learned names.
func NewECHNames(max int) *ECHNames {
	e := &ECHNames{names: make(map[string]struct{}), max: max}
	for _, n := range builtinECHPublicNames {
		e.names[n] = struct{}{}
	}
	return e
}

// Has reports whether name is a known ECH public name.
func (e *ECHNames) Has(name string) bool {
	e.mu.RLock()
	_, ok := e.names[name]
	e.mu.RUnlock()
	return ok
}

// Learn adds names (already normalised and escaped).
func (e *ECHNames) Learn(names []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range names {
		if _, ok := e.names[n]; ok {
			continue
		}
		if len(e.names) >= e.max {
			e.Dropped++
			continue
		}
		e.names[n] = struct{}{}
	}
}
