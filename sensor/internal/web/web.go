// Package web is the sensor's HTTP surface: the landing page, /metrics,
// /-/healthy, /-/ready, /-/reload, the hosts API (/api/v1/hosts) and the
// compliance report (/report), served with the Prometheus
// exporter-toolkit, which adds TLS and basic authentication from
// --web.config.file.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	toolkit "github.com/prometheus/exporter-toolkit/web"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/report"
)

// HostsFunc returns the hosts of the inventory matching f (the report
// filters them again) and their daily contact counts (nil: no timeline).
type HostsFunc func(ctx context.Context, f inventory.Filter) ([]inventory.Host, []inventory.DayCount, error)

// Config sets up a Server.
type Config struct {
	// Flags are the exporter-toolkit flags: listen addresses, systemd
	// socket activation, and the web configuration file (TLS, basic
	// authentication).
	Flags toolkit.FlagConfig
	// Gatherer is what /metrics exposes.
	Gatherer prometheus.Gatherer
	// Registerer, when set, receives the /metrics handler's own metrics
	// (promhttp_metric_handler_*).
	Registerer prometheus.Registerer
	// Name, Description and Version head the landing page.
	Name, Description, Version string
	// Reload reloads the configuration (POST /-/reload); nil: 404.
	Reload func() error
	// Ready reports whether the sensor is ready (/-/ready); nil: always.
	Ready func() bool
	// Hosts feeds /api/v1/hosts and /report; nil: 404.
	Hosts HostsFunc
	// Observer names the sensor in the report.
	Observer string
	// Pprof adds /debug/pprof/.
	Pprof bool
	// Now is the clock of the report (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Server serves the HTTP surface. Start it once; Shutdown stops it.
type Server struct {
	cfg       Config
	handler   http.Handler
	srv       *http.Server
	listeners []net.Listener
	done      chan struct{}
	mu        sync.Mutex
	err       error
}

// New checks the configuration (the web configuration file is read and
// validated now, so that a bad file is an error before anything runs)
// and builds the handlers.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Gatherer == nil {
		return nil, errors.New("web: no gatherer")
	}
	if cfg.Flags.WebConfigFile == nil {
		empty := ""
		cfg.Flags.WebConfigFile = &empty
	}
	if f := *cfg.Flags.WebConfigFile; f != "" {
		if err := toolkit.Validate(f); err != nil {
			return nil, fmt.Errorf("web: --web.config.file %s: %w", f, err)
		}
	}
	s := &Server{cfg: cfg, done: make(chan struct{})}
	h, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

// Handler returns the server's handler, without TLS nor authentication
// (those are added by the exporter-toolkit when serving).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() (http.Handler, error) {
	c := &s.cfg
	mux := http.NewServeMux()
	links := []toolkit.LandingLinks{
		{Address: "/metrics", Text: "Metrics", Description: "Prometheus metrics"},
	}
	if c.Hosts != nil {
		links = append(links,
			toolkit.LandingLinks{Address: "/report", Text: "Compliance report", Description: "hosts still phoning home after their removal deadline (HTML)"},
			toolkit.LandingLinks{Address: "/api/v1/hosts", Text: "Hosts", Description: "the inventory as JSON; filters: since, category, status, site, quiet, now"})
	}
	links = append(links,
		toolkit.LandingLinks{Address: "/-/healthy", Text: "Health", Description: "200 while the process runs"},
		toolkit.LandingLinks{Address: "/-/ready", Text: "Readiness", Description: "200 once the capture has started"})
	profiling := "false"
	if c.Pprof {
		profiling = "true"
	}
	landing, err := toolkit.NewLandingPage(toolkit.LandingConfig{
		Name:        c.Name,
		Description: c.Description,
		Version:     c.Version,
		Links:       links,
		Profiling:   profiling,
	})
	if err != nil {
		return nil, fmt.Errorf("web: landing page: %w", err)
	}
	mux.Handle("/", landing)
	// Browsers ask for it; an empty answer keeps their consoles quiet.
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	var metrics http.Handler = promhttp.HandlerFor(c.Gatherer, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(c.Log.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          c.Registerer,
		EnableOpenMetrics: true,
	})
	if c.Registerer != nil {
		metrics = promhttp.InstrumentMetricHandler(c.Registerer, metrics)
	}
	mux.Handle("/metrics", metrics)

	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, r *http.Request) {
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		text(w, http.StatusOK, c.Name+" is Healthy.\n")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) {
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		if c.Ready != nil && !c.Ready() {
			text(w, http.StatusServiceUnavailable, c.Name+" is not ready.\n")
			return
		}
		text(w, http.StatusOK, c.Name+" is Ready.\n")
	})
	if c.Reload != nil {
		var mu sync.Mutex // one reload at a time
		mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
			if !allow(w, r, http.MethodPost) {
				return
			}
			mu.Lock()
			err := c.Reload()
			mu.Unlock()
			if err != nil {
				text(w, http.StatusInternalServerError, "failed to reload config: "+err.Error()+"\n")
				return
			}
			text(w, http.StatusOK, "reloaded\n")
		})
	}
	if c.Hosts != nil {
		mux.HandleFunc("/api/v1/hosts", s.serveHosts)
		mux.HandleFunc("/report", s.serveReport)
	}
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return readOnly(mux), nil
}

// readOnly refuses every method but GET and HEAD, except on /-/reload
// (POST, the one request that changes anything) and pprof's symbol
// look-up (POST by `go tool pprof`, read-only): nothing else on the
// surface may be asked to write.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/-/reload", r.Method == http.MethodGet, r.Method == http.MethodHead:
		case r.Method == http.MethodPost && r.URL.Path == "/debug/pprof/symbol":
		default:
			allow(w, r, http.MethodGet, http.MethodHead)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow answers 405 unless r's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	text(w, http.StatusMethodNotAllowed, "method not allowed: use "+strings.Join(methods, " or ")+"\n")
	return false
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprint(w, body)
}

// Start opens the listeners (an address in use is an error now) and
// serves in the background until Shutdown.
func (s *Server) Start() error {
	f := &s.cfg.Flags
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	if f.WebSystemdSocket != nil && *f.WebSystemdSocket {
		got, err := activation.Listeners()
		if err != nil {
			return fmt.Errorf("web: systemd socket activation: %w", err)
		}
		for _, l := range got {
			if l != nil {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			return errors.New("web: systemd socket activation: no socket passed")
		}
	} else {
		if f.WebListenAddresses == nil || len(*f.WebListenAddresses) == 0 {
			return errors.New("web: no listen address")
		}
		for _, addr := range *f.WebListenAddresses {
			l, err := listen(addr)
			if err != nil {
				closeAll()
				return fmt.Errorf("web: --web.listen-address %s: %w", addr, err)
			}
			ls = append(ls, l)
		}
	}
	s.listeners = ls
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		err := toolkit.ServeMultiple(ls, s.srv, &s.cfg.Flags, s.cfg.Log)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Log.Error("web server stopped", "err", err)
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	return nil
}

// listen opens a TCP listener, or a vsock one for vsock://:PORT (as the
// exporter-toolkit does).
func listen(addr string) (net.Listener, error) {
	if rest, ok := strings.CutPrefix(addr, "vsock://"); ok {
		u, err := url.Parse("vsock://" + rest)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(u.Port(), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad vsock port %q", u.Port())
		}
		return vsock.Listen(uint32(port), nil)
	}
	return net.Listen("tcp", addr)
}

// Addrs returns the addresses the server listens on (after Start).
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Err returns the error the server stopped with, if any: a TLS
// configuration that became invalid, an accept failure.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Shutdown stops accepting, waits for the requests in flight (until ctx
// ends) and closes the listeners.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return err
}

// reportOptions reads the report's filters from a query: since,
// category, status (repeatable or comma-separated), site, quiet (a
// duration; "14d" works) and now (the instant statuses are judged at).
// Unknown parameters are refused, so that a typo is not a silent no-op.
func (s *Server) reportOptions(q url.Values) (report.Options, error) {
	o := report.Options{Now: s.cfg.Now().UTC(), Observer: s.cfg.Observer}
	for k, v := range q {
		val := v[len(v)-1]
		switch k {
		case "since":
			t, err := inventory.ParseDate(val)
			if err != nil {
				return o, fmt.Errorf("since: %w", err)
			}
			o.Filter.Since = t
		case "category":
			c := rules.Category(val)
			if !c.Valid() {
				return o, fmt.Errorf("category %q: not a category (%v)", val, rules.Categories())
			}
			o.Filter.Category = c
		case "status":
			for _, all := range v {
				for _, st := range strings.Split(all, ",") {
					if st = strings.TrimSpace(st); st == "" {
						continue
					}
					if !report.Status(st).Valid() {
						return o, fmt.Errorf("status %q: not a status (%v)", st, report.Statuses())
					}
					o.Status = append(o.Status, report.Status(st))
				}
			}
		case "site":
			o.Filter.Site = val
		case "quiet":
			d, err := parseDuration(val)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("quiet %q: want a positive duration such as 14d or 72h", val)
			}
			o.Quiet = d
		case "now":
			t, err := inventory.ParseDate(val)
			if err != nil {
				return o, fmt.Errorf("now: %w", err)
			}
			o.Now = t
		default:
			return o, fmt.Errorf("unknown parameter %q (known: since, category, status, site, quiet, now)", k)
		}
	}
	o.Generated = o.Now
	return o, nil
}

// parseDuration is time.ParseDuration that also takes whole days ("14d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// build makes the report for a request; on error it has answered.
func (s *Server) build(w http.ResponseWriter, r *http.Request, fail func(int, error)) *report.Report {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return nil
	}
	o, err := s.reportOptions(r.URL.Query())
	if err != nil {
		fail(http.StatusBadRequest, err)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	hosts, daily, err := s.cfg.Hosts(ctx, o.Filter)
	if err != nil {
		s.cfg.Log.Error("reading the inventory", "err", err, "path", r.URL.Path)
		fail(http.StatusInternalServerError, fmt.Errorf("reading the inventory: %w", err))
		return nil
	}
	return report.Build(hosts, daily, o)
}

func (s *Server) serveHosts(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, err error) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	rep := s.build(w, r, fail)
	if rep == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := rep.WriteJSON(w); err != nil {
		s.cfg.Log.Warn("writing /api/v1/hosts", "err", err)
	}
}

func (s *Server) serveReport(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, err error) { text(w, code, err.Error()+"\n") }
	rep := s.build(w, r, fail)
	if rep == nil {
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := rep.WriteHTML(w); err != nil {
		s.cfg.Log.Warn("writing /report", "err", err)
	}
}
