// Package metrics holds every Prometheus instrument of the sensor in one
// place: a Collector that reads a plain Snapshot of the sensor's counters
// at scrape time, registered into an injected prometheus.Registerer.
//
// The package imports nothing of this module. The command fills a
// Snapshot from the pipeline, the inventory, the GeoIP databases and the
// inventory flusher; the packet path pays nothing for metrics, because
// nothing is counted twice: the collector copies what the sensor already
// counts when Prometheus asks.
//
// Label values come from fixed sets (capture source kind or interface,
// decode layer, transport, protocol, unseen reason, category, severity,
// indicator kind, report status, database role) or from the operator's
// configuration (profile ids). No label ever carries a name or an address
// seen on the wire: those are attacker-controlled and unbounded.
package metrics
