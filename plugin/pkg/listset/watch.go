package listset

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// Settle is how long a burst of file events must have been quiet before
	// the lists are scanned: writing a list and then its signature is one
	// change, not two.
	Settle = 25 * time.Millisecond
	// maxSettle bounds the wait when events never stop.
	maxSettle = time.Second
	// rescan is how often the lists are scanned without an event, in case one
	// was lost (an inotify queue overflow, a network file system), and how
	// often expiry is checked.
	rescan = 10 * time.Second
)

// Start watches the directories of the configured lists and, on a
// goroutine of its own, scans the lists again whenever something in them
// changes. From then on only that goroutine may call the Set's methods,
// until Stop returns.
func (s *Set) Start() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	for _, dir := range s.watchDirs() {
		if err := w.Add(dir); err != nil {
			w.Close()
			return err
		}
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.watch(w)
	return nil
}

// Stop stops the watcher goroutine and waits for it. It does nothing if
// the Set is not watching.
func (s *Set) Stop() {
	if s.stop == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.stop = nil
}

// watchDirs returns the directories to watch: the list directories, and the
// directory of each list file. Watching a directory rather than a file sees
// a file renamed into place and the symbolic link swap of Kubernetes volumes.
func (s *Set) watchDirs() []string {
	seen := map[string]bool{}
	var dirs []string
	paths := s.cfg.Lists
	if s.cfg.Trust != "" {
		paths = append(slices.Clip(paths), s.cfg.Trust)
	}
	for _, path := range paths {
		dir := path
		if !isDir(path) {
			dir = filepath.Dir(path)
		}
		if !seen[dir] {
			seen[dir] = true
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

func (s *Set) watch(w *fsnotify.Watcher) {
	defer close(s.done)
	defer w.Close()

	timer := time.NewTimer(0) // a first scan catches changes made since setup
	var burst time.Time       // when the pending burst of events began
	ticker := time.NewTicker(rescan)
	defer ticker.Stop()
	retry := time.NewTicker(SaveRetry)
	defer retry.Stop()
	for {
		select {
		case <-s.stop:
			timer.Stop()
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if burst.IsZero() {
				burst = time.Now()
			}
			timer.Reset(min(Settle, max(0, maxSettle-time.Since(burst))))
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.note(Change{Kind: Problem, Err: fmt.Errorf("watching the lists: %w; scanning them all", err)})
			s.commit(nil)
			timer.Reset(0)
		case <-timer.C:
			burst = time.Time{}
			s.Scan()
		case <-ticker.C:
			s.Scan()
		case <-retry.C:
			if s.Unsaved() > 0 {
				s.saveState()
				s.commit(nil)
			}
		}
	}
}
