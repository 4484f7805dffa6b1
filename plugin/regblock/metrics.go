package regblock

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/regblock/regblock/plugin/pkg/blocklist"
)

// Results of a reload, the result label of reloadsTotal, besides the
// blocklist.Reason values.
const (
	resultApplied   = "applied"
	resultUnchanged = "unchanged"
	resultRollback  = "rollback"
)

var (
	reloadsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "reloads_total",
		Help:      "Counter of list versions read, by list and result (applied, unchanged, or why it was rejected).",
	}, []string{"list", "result"})

	listEntries = newListGauge("list_entries", "Number of blocking entries (exceptions excluded) of the list in force.")
	listSerial  = newListGauge("list_serial", "Serial of the list in force.")
	listIssued  = newListGauge("list_issued_timestamp_seconds", "Issue time of the list in force, from its signed header, in seconds since the epoch.")
	listApplied = newListGauge("list_applied_timestamp_seconds", "Time the list in force was applied, in seconds since the epoch.")
	listExpiry  = newListGauge("list_expiry_timestamp_seconds", "Expiry time of the list in force, from its signed header, in seconds since the epoch; absent when it does not expire.")
	listDelay   = newListGauge("list_enforcement_delay_seconds", "Seconds from the issue time of the list in force to the time it was applied.")
)

func newListGauge(name, help string) *prometheus.GaugeVec {
	return promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      name,
		Help:      help,
	}, []string{"list"})
}

// setListMetrics sets the gauges of a list that was just put in force.
func setListMetrics(c *current) {
	l := c.list
	listEntries.WithLabelValues(l.Name).Set(float64(l.Blocking()))
	listSerial.WithLabelValues(l.Name).Set(float64(l.Serial))
	listIssued.WithLabelValues(l.Name).Set(float64(l.Issued.Unix()))
	listApplied.WithLabelValues(l.Name).Set(float64(c.applied.Unix()))
	listDelay.WithLabelValues(l.Name).Set(c.applied.Sub(l.Issued).Seconds())
	if l.Expires.IsZero() {
		listExpiry.DeleteLabelValues(l.Name)
	} else {
		listExpiry.WithLabelValues(l.Name).Set(float64(l.Expires.Unix()))
	}
}

// deleteListMetrics removes the gauges of a list no longer in force.
func deleteListMetrics(name string) {
	for _, g := range []*prometheus.GaugeVec{listEntries, listSerial, listIssued, listApplied, listExpiry, listDelay} {
		g.DeleteLabelValues(name)
	}
}

func countReload(list string, result string) { reloadsTotal.WithLabelValues(list, result).Inc() }

func countRejection(list string, reason blocklist.Reason) { countReload(list, string(reason)) }
