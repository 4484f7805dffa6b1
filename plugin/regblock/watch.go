package regblock

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// settle is how long a burst of file events must have been quiet before
	// the lists are scanned: writing a list and then its signature is one
	// change, not two.
	settle = 100 * time.Millisecond
	// maxSettle bounds the wait when events never stop.
	maxSettle = time.Second
	// rescan is how often the lists are scanned without an event, in case one
	// was lost (an inotify queue overflow, a network file system), and how
	// often expiry is checked.
	rescan = 10 * time.Second
)

// startWatching watches the directories of the configured lists and scans
// the lists again whenever something in them changes.
func (rb *Regblock) startWatching() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	for _, dir := range rb.watchDirs() {
		if err := w.Add(dir); err != nil {
			w.Close()
			return err
		}
	}
	rb.stop, rb.done = make(chan struct{}), make(chan struct{})
	go rb.watch(w)
	return nil
}

// stopWatching stops the watcher goroutine and waits for it.
func (rb *Regblock) stopWatching() error {
	if rb.stop == nil {
		return nil
	}
	close(rb.stop)
	<-rb.done
	rb.stop = nil
	return nil
}

// watchDirs returns the directories to watch: the list directories, and the
// directory of each list file. Watching a directory rather than a file sees
// a file renamed into place and the symbolic link swap of Kubernetes volumes.
func (rb *Regblock) watchDirs() []string {
	seen := map[string]bool{}
	var dirs []string
	for _, path := range rb.cfg.lists {
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

func (rb *Regblock) watch(w *fsnotify.Watcher) {
	defer close(rb.done)
	defer w.Close()

	timer := time.NewTimer(0) // a first scan catches changes made since setup
	var burst time.Time       // when the pending burst of events began
	ticker := time.NewTicker(rescan)
	defer ticker.Stop()
	for {
		select {
		case <-rb.stop:
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
			timer.Reset(min(settle, max(0, maxSettle-time.Since(burst))))
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warningf("Watching the lists: %v; scanning them all", err)
			timer.Reset(0)
		case <-timer.C:
			burst = time.Time{}
			rb.store.scan()
		case <-ticker.C:
			rb.store.scan()
		}
	}
}
