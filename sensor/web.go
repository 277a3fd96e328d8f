package main

// The HTTP surface of `phonehome run` (sensor/internal/web) and its
// wiring: flags, the metrics snapshot read at scrape time, the reload
// shared by SIGHUP and POST /-/reload, and --web.hold. sense() calls
// newReloader and startWeb just before it runs the pipeline, and stops
// the server when it returns.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	toolkit "github.com/prometheus/exporter-toolkit/web"

	"github.com/phonehome-sensor/phonehome/geo"
	"github.com/phonehome-sensor/phonehome/metrics"
	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/pipeline"
	"github.com/phonehome-sensor/phonehome/sensor/internal/report"
	"github.com/phonehome-sensor/phonehome/sensor/internal/web"
)

// defaultWebAddress is where the HTTP surface listens by default. The
// Prometheus "default port allocations" list (9100–9999) has been full
// since 2023, and Prometheus' guide asks exporters without an entry to
// stay out of that range; 17466 ("PHON" on a phone keypad, 7466, plus
// 10000) is below Linux's ephemeral range and in no common use.
const defaultWebAddress = ":17466"

// webArgs are the flags of the HTTP surface.
type webArgs struct {
	listen     []string
	listenSet  bool
	systemd    bool
	configFile string
	hold       time.Duration
	pprof      bool
}

// addWebFlags registers the HTTP flags on `run`. They are named as in
// every Prometheus exporter (exporter-toolkit's kingpinflag), declared
// here to tell whether the user gave a listen address.
func addWebFlags(c *kingpin.CmdClause, w *webArgs) {
	c.Flag("web.listen-address", "Address of the HTTP surface (metrics, health, hosts API, report); repeatable; vsock://:PORT for vsock. "+
		"Live capture always serves (default "+defaultWebAddress+"); a run over files serves only when this, --web.systemd-socket or --web.hold is given.").
		Default(defaultWebAddress).IsSetByUser(&w.listenSet).StringsVar(&w.listen)
	if runtime.GOOS == "linux" {
		c.Flag("web.systemd-socket", "Use systemd socket activation listeners instead of --web.listen-address.").BoolVar(&w.systemd)
	}
	c.Flag("web.config.file", "Exporter-toolkit web configuration (YAML): TLS, basic authentication, rate limit. "+
		"See https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md").PlaceHolder("FILE").StringVar(&w.configFile)
	c.Flag("web.hold", "After the capture files are read, keep serving this long (or until SIGINT/SIGTERM), e.g. to scrape or look at a replay.").
		Default("0s").DurationVar(&w.hold)
	c.Flag("debug.pprof", "Serve Go profiles under /debug/pprof/.").BoolVar(&w.pprof)
}

// enabled tells whether the run serves HTTP.
func (w *webArgs) enabled(live bool) bool {
	return live || w.listenSet || w.systemd || w.hold > 0 || w.pprof
}

// reloader reloads the rules and the GeoIP databases, for SIGHUP and
// POST /-/reload alike, and keeps the outcome for the metrics.
type reloader struct {
	a     *args
	rules *atomic.Pointer[rules.Set]
	geo   *geo.Reloader
	log   *slog.Logger

	mu    sync.Mutex
	stats metrics.Reload // of the rules
	// The GeoIP reloader also reloads by itself when a file changes:
	// its counters are read at each scrape, and the outcome of the last
	// reload inferred from which of them moved since the last look.
	geoOK       bool
	geoFailures uint64
	geoSuccess  time.Time
}

func newReloader(a *args, set *atomic.Pointer[rules.Set], geoDB *geo.Reloader, log *slog.Logger) *reloader {
	gs := geoDB.Stats()
	return &reloader{a: a, rules: set, geo: geoDB, log: log,
		stats: metrics.Reload{LastSuccessful: true, LastSuccess: time.Now()},
		geoOK: true, geoFailures: gs.Failures, geoSuccess: gs.LastSuccess}
}

// reload reloads the rules and the GeoIP databases; what fails to load
// leaves the old one in force. The error names what failed.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	r.stats.Reloads++
	if set, err := loadRules(r.a); err != nil {
		r.stats.Failures++
		r.stats.LastSuccessful = false
		r.log.Error("rules reload failed; the old rules stay in force", "err", err)
		errs = append(errs, fmt.Errorf("rules: %w", err))
	} else {
		r.rules.Store(set)
		r.stats.LastSuccessful = true
		r.stats.LastSuccess = time.Now()
		r.log.Info("rules reloaded", "rules", len(set.Rules()))
	}
	if r.a.reopenAlerts != nil {
		if err := r.a.reopenAlerts(); err != nil {
			r.log.Error("alerts file reopen failed", "err", err)
			errs = append(errs, err)
		}
	}
	err := r.geo.Reload()
	r.observeGeo(r.geo.Stats())
	r.geoOK = err == nil
	if err != nil {
		r.log.Error("GeoIP reload failed; the old databases stay in force", "err", err)
		errs = append(errs, fmt.Errorf("geoip: %w", err))
	}
	return errors.Join(errs...)
}

// observeGeo updates the inferred outcome of the last GeoIP reload; r.mu
// is held.
func (r *reloader) observeGeo(s geo.ReloadStats) {
	switch {
	case s.LastSuccess.After(r.geoSuccess):
		r.geoOK = true
	case s.Failures > r.geoFailures:
		r.geoOK = false
	}
	r.geoSuccess, r.geoFailures = s.LastSuccess, s.Failures
}

func (r *reloader) snapshot() (rulesStats, geoStats metrics.Reload) {
	gs := r.geo.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observeGeo(gs)
	return r.stats, metrics.Reload{Reloads: gs.Reloads, Failures: gs.Failures, LastSuccessful: r.geoOK, LastSuccess: gs.LastSuccess}
}

// webServer is the running HTTP surface of one run; its zero value (no
// server) is what inspect and runs over files without web flags get.
type webServer struct {
	srv     *web.Server
	a       *args
	live    *pipeline.Live
	rules   func() *rules.Set
	inv     *inventory.Inventory
	geo     *geo.Reloader
	reloads *reloader
	log     *slog.Logger
	done    <-chan struct{} // SIGINT or SIGTERM
	files   bool            // reading capture files, not interfaces
	flowMax uint64

	running, ready atomic.Bool

	alertsMu sync.Mutex
	alerts   map[alertKey]uint64

	hostsMu   sync.Mutex
	hostsAt   time.Time
	hostsTTL  time.Duration
	hostsSnap hostCounts

	storeMu sync.Mutex
	store   inventory.Store // the server's own handle, opened on first use

	outputs *alert.Outputs // nil for inspect
}

// startWeb starts the HTTP surface, when the run has one, and hooks the
// metrics into cfg: a pipeline.Live for the counters, and a wrapper of
// cfg.Emit that counts alerts by profile, category, kind and severity.
// Call it after the capture, the store and the inventory are open, just
// before the pipeline runs; stop it when the run is over.
func startWeb(ctx context.Context, a *args, cfg *pipeline.Config, geoDB *geo.Reloader, reloads *reloader, outs *alert.Outputs) (*webServer, error) {
	w := &webServer{a: a, rules: cfg.Rules, inv: cfg.Inventory, geo: geoDB, reloads: reloads, log: cfg.Log, outputs: outs,
		done: ctx.Done(), files: len(a.files) > 0, alerts: map[alertKey]uint64{}}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Inspect || cfg.Inventory == nil || !a.web.enabled(!w.files) {
		return w, nil
	}
	workers := max(cfg.Workers, 1)
	w.flowMax = uint64(max(cfg.Flow.MaxFlows, 1) * workers)
	w.live = pipeline.NewLive()
	cfg.Live = w.live
	if emit := cfg.Emit; emit != nil {
		cfg.Emit = func(e *alert.Event) {
			if e.Event.Kind == alert.KindAlert {
				w.countAlert(e)
			}
			emit(e)
		}
	}

	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.BuildInfo{Version: buildVersion(), GoVersion: runtime.Version()}, w.snapshot); err != nil {
		return nil, err
	}
	if err := metrics.RegisterRuntime(reg); err != nil {
		return nil, err
	}
	listen := a.web.listen
	srv, err := web.New(web.Config{
		Flags:       toolkit.FlagConfig{WebListenAddresses: &listen, WebSystemdSocket: &a.web.systemd, WebConfigFile: &a.web.configFile},
		Gatherer:    reg,
		Registerer:  reg,
		Name:        "phonehome",
		Description: "Passive sensor: hosts that still phone home to a banned vendor's infrastructure",
		Version:     buildVersion(),
		Reload:      reloads.reload,
		Ready:       w.ready.Load,
		Hosts:       w.hosts,
		Observer:    a.observerName,
		Pprof:       a.web.pprof,
		Log:         w.log,
	})
	if err != nil {
		return nil, usageError{err}
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	w.srv = srv
	w.running.Store(true)
	w.ready.Store(true)
	return w, nil
}

// stop ends the server: at once, or after --web.hold when the capture
// files were read to the end (SIGINT and SIGTERM cut the hold short).
func (w *webServer) stop() {
	if w == nil || w.srv == nil {
		return
	}
	w.running.Store(false)
	if h := w.a.web.hold; h > 0 {
		select {
		case <-w.done:
		default:
			w.log.Info("capture done; still serving (--web.hold) until the hold ends or SIGINT/SIGTERM", "hold", h)
			t := time.NewTimer(h)
			select {
			case <-t.C:
			case <-w.done:
			}
			t.Stop()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.srv.Shutdown(ctx); err != nil {
		w.log.Warn("web server shutdown", "err", err)
	}
	w.storeMu.Lock()
	if w.store != nil {
		w.store.Close()
		w.store = nil
	}
	w.storeMu.Unlock()
}

// hosts feeds /api/v1/hosts and /report: from the store when there is
// one (every run's hosts), else from this run's inventory.
func (w *webServer) hosts(ctx context.Context, f inventory.Filter) ([]inventory.Host, []inventory.DayCount, error) {
	if w.a.storage.dsn == "" && w.a.storage.path == "" {
		return w.inv.Hosts(), nil, nil
	}
	w.storeMu.Lock()
	if w.store == nil {
		st, err := openStore(ctx, &w.a.storage)
		if err != nil {
			w.storeMu.Unlock()
			return nil, nil, err
		}
		w.store = st
	}
	st := w.store
	w.storeMu.Unlock()
	hosts, err := st.Hosts(ctx, f)
	if err != nil {
		return nil, nil, fmt.Errorf("inventory %s: %w", w.a.storage.where(), err)
	}
	daily, err := st.Daily(ctx, f)
	if err != nil {
		return nil, nil, fmt.Errorf("inventory %s: %w", w.a.storage.where(), err)
	}
	return hosts, daily, nil
}

// alertKey labels phonehome_alerts_total: values from fixed sets and
// profile ids from the rules in force, never from the wire.
type alertKey struct{ profile, category, kind, severity string }

func (w *webServer) countAlert(e *alert.Event) {
	k := alertKey{profile: "unknown", category: "unknown", kind: alertKind(e), severity: severityName(e.Event.Severity)}
	if r := e.Rule; r != nil {
		if r.Ruleset != "" {
			k.profile = r.Ruleset
		}
		if c := rules.Category(r.Category); c.Valid() {
			k.category = string(c)
		}
	}
	w.alertsMu.Lock()
	w.alerts[k]++
	w.alertsMu.Unlock()
}

// alertKind says what kind of indicator matched, from the field the
// alert's enrichment names (a fixed set, see pipeline).
func alertKind(e *alert.Event) string {
	if e.Threat == nil || len(e.Threat.Enrichments) == 0 {
		return "other"
	}
	switch e.Threat.Enrichments[0].Matched.Field {
	case "dns.question.name", "dns.answers.name", "dns.answers.data", "tls.client.server_name", "url.domain":
		return "name"
	case "destination.ip", "dns.resolved_ip":
		return "address"
	case "destination.domain":
		return "learned-address"
	case "destination.port":
		return "port"
	case "destination.as.number":
		return "asn"
	case "destination.geo.country_iso_code":
		return "country"
	case "tls.client.ja4":
		return "ja4"
	case "user_agent.original":
		return "user-agent"
	}
	return "other"
}

// severityName is the rule severity an alert's score stands for, or
// "unknown" for a score the pipeline never gives: a fixed set of labels.
func severityName(score int) string {
	if s, exact := alert.ScoreSeverity(score); exact {
		return s.String()
	}
	return "unknown"
}

// hostCounts is what the metrics say about the inventoried hosts.
type hostCounts struct {
	hosts    metrics.Hosts
	contacts []metrics.Count
}

// hostsEvery bounds how often the inventory is walked for the metrics: a
// walk copies every host under the inventory's lock (about 3 ms per
// thousand hosts). A walk is reused for at least hostsEvery, and for 20
// times as long as it took, so that walking takes at most 5 % of the time.
const hostsEvery = time.Second

// phoningHomeWindow is how recent a contact must be for its host to count
// as phoning home now.
const phoningHomeWindow = 24 * time.Hour

// countHosts walks the inventory, at most every hostsEvery. "Now" is the
// sensor's clock: the wall clock in live capture; for capture files, the
// packet time of the newest contact (a replay tells what was happening
// when it was captured, and tells it the same way every time).
func (w *webServer) countHosts() hostCounts {
	w.hostsMu.Lock()
	defer w.hostsMu.Unlock()
	if !w.hostsAt.IsZero() && time.Since(w.hostsAt) < w.hostsTTL {
		return w.hostsSnap
	}
	start := time.Now()
	hosts := w.inv.Hosts()
	now := time.Now()
	if w.files {
		now = time.Time{}
		for i := range hosts {
			if hosts[i].LastSeen.After(now) {
				now = hosts[i].LastSeen
			}
		}
	}
	byStatus := map[report.Status]uint64{}
	byProfile := map[string]uint64{}
	byCat := map[rules.Category]uint64{}
	var hc hostCounts
	for i := range hosts {
		h := &hosts[i]
		if now.Sub(h.LastSeen) < phoningHomeWindow {
			hc.hosts.PhoningHome++
			if !h.Deadline.IsZero() && !h.LastSeen.Before(h.Deadline) {
				hc.hosts.AfterDeadline++
			}
		}
		byStatus[report.Classify(h, now, report.DefaultQuiet)]++
		for _, p := range h.Profiles {
			byProfile[p]++
		}
		for c, k := range h.Categories {
			byCat[c] += k.Count
		}
	}
	hc.hosts.Total = uint64(len(hosts))
	hc.hosts.Added = hc.hosts.Total // hosts are never dropped from the inventory
	for _, s := range report.Statuses() {
		hc.hosts.ByStatus = append(hc.hosts.ByStatus, metrics.Count{Label: string(s), N: byStatus[s]})
	}
	for _, p := range w.rules().Profiles() {
		hc.hosts.ByProfile = append(hc.hosts.ByProfile, metrics.Count{Label: p.ID, N: byProfile[p.ID]})
	}
	for _, c := range rules.Categories() {
		hc.contacts = append(hc.contacts, metrics.Count{Label: string(c), N: byCat[c]})
	}
	w.hostsAt, w.hostsSnap = time.Now(), hc
	w.hostsTTL = max(hostsEvery, 20*time.Since(start))
	return hc
}

// snapshot is read by the metrics collector at every scrape.
func (w *webServer) snapshot() metrics.Snapshot {
	st := w.live.Snapshot()
	s := metrics.Snapshot{
		CaptureRunning:    w.running.Load(),
		QueueDrops:        st.QueueDrops,
		DNSMessages:       st.DNSMessages,
		DNSMalformed:      st.DNSMalformed,
		ClientHellos:      []metrics.Count{{Label: "tcp", N: st.ClientHellos}, {Label: "quic", N: st.QUICHellos}},
		QUICInitials:      st.QUICInitials,
		HTTPRequests:      st.HTTPRequests,
		Observations:      st.Observations,
		Hits:              st.Hits,
		Events:            st.Events,
		GeoLookups:        st.GeoLookups,
		ReassemblyRefused: st.GatherRefused,
		StreamStartLost:   st.StreamStartLost,
		Flows: metrics.Flows{Active: uint64(max(st.Flows.Active, 0)), Max: w.flowMax,
			Created: st.Flows.Created, Expired: st.Flows.Expired, Refused: st.Flows.Refused, Evicted: st.Flows.Evicted},
		ReassemblyTimeouts:  st.GatherTimeouts,
		ReassemblyReclaimed: st.GatherReclaimed,
		Learned: metrics.Learned{Len: uint64(max(st.LearnedLen, 0)), Max: uint64(pipeline.DefaultLearnedConfig.MaxEntries),
			Added: st.LearnedAdded, Expired: st.LearnedExpired, Evicted: st.LearnedEvicted},
	}
	s.Sources = w.sources(st)
	for i := range decode.NumLayers {
		s.DecodeErrors = append(s.DecodeErrors, metrics.Count{Label: decode.LayerName(i), N: st.Decode.Errors[i]})
	}
	for i := range pipeline.NumUnseen {
		r := pipeline.Unseen(i).String()
		s.Unseen = append(s.Unseen,
			metrics.UnseenCount{Protocol: "tls", Reason: r, N: st.UnseenTLS[i]},
			metrics.UnseenCount{Protocol: "quic", Reason: r, N: st.UnseenQUIC[i]})
	}

	if w.outputs != nil {
		for _, o := range w.outputs.Stats() {
			s.Outputs = append(s.Outputs, metrics.Output{Name: o.Name, Sent: o.Sent, Retried: o.Retried, Dropped: o.Dropped,
				Failed: o.Failed, Queued: o.Queued, QueueCap: o.QueueCap})
		}
	}
	w.alertsMu.Lock()
	for k, n := range w.alerts {
		s.Alerts = append(s.Alerts, metrics.AlertCount{Profile: k.profile, Category: k.category, Kind: k.kind, Severity: k.severity, N: n})
	}
	w.alertsMu.Unlock()

	hc := w.countHosts()
	s.Hosts, s.Contacts = hc.hosts, hc.contacts
	is := w.inv.Stats()
	s.Inventory = metrics.Inventory{ExternalContacts: is.ExternalClients, SuppressedContacts: is.Suppressed,
		OverdueContacts: is.Overdue, RefusedHosts: is.HostsRefused, DroppedEvidence: is.EvidenceDropped}
	if f := w.a.storage.flusher; f != nil {
		fs := f.Stats()
		s.Flush = &metrics.Flush{Flushes: fs.Flushes, Failures: fs.Failures, Rows: fs.Rows,
			LastDuration: fs.LastDuration, Pending: uint64(max(fs.Pending, 0))}
	}

	s.Rules, s.GeoIP = w.reloads.snapshot()
	perProfile := map[string]uint64{}
	set := w.rules()
	for _, r := range set.Rules() {
		if r.Profile != nil {
			perProfile[r.Profile.ID]++
		}
	}
	for _, p := range set.Profiles() {
		s.RulesLoaded = append(s.RulesLoaded, metrics.Count{Label: p.ID, N: perProfile[p.ID]})
	}
	for _, d := range w.geo.DB().Info() {
		label := d.Role
		if strings.HasPrefix(d.Path, "embedded:") {
			label = "embedded"
		}
		s.GeoIPBuilt = append(s.GeoIPBuilt, metrics.Timestamp{Label: label, Time: d.BuildTime})
	}
	return s
}

// sources describes the capture sources: "file" for capture files; in
// live capture, one per interface with the kernel's drop counters.
func (w *webServer) sources(st *pipeline.Stats) []metrics.Source {
	open := w.a.live.open
	if w.files || open == nil {
		return []metrics.Source{{Name: "file", Packets: st.Packets, Bytes: st.Bytes}}
	}
	ls := open.Stats()
	out := make([]metrics.Source, 0, len(ls))
	for _, l := range ls {
		src := metrics.Source{Name: l.Interface, Packets: l.Packets - min(l.KernelDrops, l.Packets), KernelDrops: l.KernelDrops, InterfaceDrops: l.IfaceDrops}
		if len(ls) == 1 {
			// The pipeline counts bytes for all interfaces together.
			src.Bytes = st.Bytes
		}
		out = append(out, src)
	}
	return out
}
