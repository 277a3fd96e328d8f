package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/alertmanager"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/eve"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/kafka"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/syslog"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert/webhook"
)

// sinkOpeners open the sinks of the URL-style --output schemes.
var sinkOpeners = map[string]func(*alert.Spec) (alert.Sink, error){
	"syslog+udp":         openSyslog,
	"syslog+tcp":         openSyslog,
	"syslog+tls":         openSyslog,
	"kafka":              func(s *alert.Spec) (alert.Sink, error) { return kafka.New(s) },
	"alertmanager+http":  openAlertmanager,
	"alertmanager+https": openAlertmanager,
	"webhook+http":       func(s *alert.Spec) (alert.Sink, error) { return webhook.New(s) },
	"webhook+https":      func(s *alert.Spec) (alert.Sink, error) { return webhook.New(s) },
}

func openSyslog(s *alert.Spec) (alert.Sink, error)       { return syslog.New(s) }
func openAlertmanager(s *alert.Spec) (alert.Sink, error) { return alertmanager.New(s) }

// openOutputs starts the event outputs of a run: every --output (and
// --alerts.out), or ECS on stdout when none is given. Each has its own
// bounded queue; a reload reopens the file outputs (a.reopenAlerts).
func openOutputs(a *args, stdout io.Writer, log *slog.Logger) (*alert.Outputs, error) {
	specs := append([]string(nil), a.outputs...)
	if a.alertsOut != "" {
		specs = append(specs, "ecs:"+a.alertsOut)
	}
	if len(specs) == 0 {
		specs = []string{"ecs:-"}
	}
	// Failures are logged once per output per minute: a dead receiver
	// must not flood the log; the counters hold the totals.
	var mu sync.Mutex
	logged := map[string]time.Time{}
	outs := alert.NewOutputs(func(name string, err error) {
		mu.Lock()
		last, seen := logged[name]
		now := time.Now()
		if seen && now.Sub(last) < time.Minute {
			mu.Unlock()
			return
		}
		logged[name] = now
		mu.Unlock()
		log.Warn("output failing; events are retried, then counted as failed", "output", name, "err", err)
	})
	stdoutUsed := false
	for _, raw := range specs {
		spec, err := alert.ParseSpec(raw)
		if err != nil {
			outs.Close(context.Background())
			return nil, usage("%v", err)
		}
		sink, err := openSink(spec, stdout, &stdoutUsed)
		if err != nil {
			outs.Close(context.Background())
			return nil, usage("--output %q: %v", raw, err)
		}
		outs.Add(spec.Config, sink)
		if w, ok := sink.(*webhook.Sink); ok && !w.Signed() {
			log.Warn("webhook output without a secret: its requests are not signed (secret-file= or $"+webhook.SecretEnv+")", "output", spec.Config.Name)
		}
	}
	a.reopenAlerts = outs.Reopen
	return outs, nil
}

func openSink(spec *alert.Spec, stdout io.Writer, stdoutUsed *bool) (alert.Sink, error) {
	var format alert.Format
	switch spec.Scheme {
	case "ecs":
		format = alert.ECSFormat
	case "eve":
		format = eve.Format
	default:
		open := sinkOpeners[spec.Scheme]
		if open == nil {
			return nil, fmt.Errorf("unknown output %q (known: ecs:PATH, eve:PATH, %s)", spec.Scheme, strings.Join(sinkSchemes(), ", "))
		}
		return open(spec)
	}
	if err := spec.Unknown(); err != nil {
		return nil, err
	}
	if spec.Path == "-" {
		if *stdoutUsed {
			return nil, fmt.Errorf("stdout is already an output")
		}
		*stdoutUsed = true
		return alert.NewStreamSink(stdout, format), nil
	}
	return alert.OpenFileSink(spec.Path, format)
}

func sinkSchemes() []string {
	var out []string
	for s := range sinkOpeners {
		out = append(out, s+"://…")
	}
	slices.Sort(out)
	return out
}

// closeOutputs lets every output deliver what it holds for up to drain,
// and reports the outputs that failed to deliver events.
func closeOutputs(outs *alert.Outputs, drain time.Duration, log *slog.Logger) ([]alert.OutputStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := outs.Close(ctx)
	stats := outs.Stats()
	var failed []string
	for _, s := range stats {
		if s.Dropped > 0 {
			log.Warn("output queue was full; events dropped", "output", s.Name, "dropped", s.Dropped)
		}
		if s.Failed > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d events not delivered (%s)", s.Name, s.Failed, s.LastError))
		}
	}
	if len(failed) > 0 && err == nil {
		err = fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return stats, err
}
