package alert

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

// Format turns one record into one line, without the newline.
type Format func(*Record) ([]byte, error)

// ECSFormat is the ECS JSON line of a record.
func ECSFormat(r *Record) ([]byte, error) { return r.ECSJSON() }

// FileSink writes one line per event to a file or a stream. A file is
// appended to, never truncated: a restart keeps the alerts already
// written, and logrotate's copytruncate stays safe; Reopen (SIGHUP) starts
// a new file for logrotate's create mode.
type FileSink struct {
	mu     sync.Mutex
	path   string // "" for a stream
	f      *os.File
	dst    io.Writer // f, or the stream
	w      *bufio.Writer
	format Format
}

// OpenFileSink opens path for appending.
func OpenFileSink(path string, format Format) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &FileSink{path: path, f: f, dst: f, w: bufio.NewWriterSize(f, 64<<10), format: format}, nil
}

// NewStreamSink writes to w (stdout); Close does not close it.
func NewStreamSink(w io.Writer, format Format) *FileSink {
	return &FileSink{dst: w, w: bufio.NewWriterSize(w, 64<<10), format: format}
}

// Send writes the batch and flushes it, so that `tail -f` sees each
// alert when it happens.
func (s *FileSink) Send(_ context.Context, batch []*Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ferr error
	for _, r := range batch {
		line, err := s.format(r)
		if err != nil {
			ferr = Permanent(err)
			continue
		}
		s.w.Write(line)
		s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		// Whatever was not written is written again by the retry; a
		// line already out may appear twice (at least once, not at
		// most once).
		s.w.Reset(s.dst) // a bufio.Writer stays failed otherwise
		return fmt.Errorf("writing %s: %w", s.name(), err)
	}
	return ferr
}

func (s *FileSink) name() string {
	if s.path == "" {
		return "stdout"
	}
	return s.path
}

// Reopen closes the file and opens path again.
func (s *FileSink) Reopen() error {
	if s.path == "" {
		return nil
	}
	nf, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.w.Flush()
	s.f.Close()
	s.f, s.dst = nf, nf
	s.w.Reset(nf)
	return err
}

// Close flushes and closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.f != nil {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
