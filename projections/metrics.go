package projections

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics. Throughput is the rate of
// koers_projection_events_total{outcome="applied"}; lag is
// koers_projection_lag_events, the stream head's position minus the
// checkpoint.
type metrics struct {
	events   *prometheus.CounterVec
	batches  *prometheus.HistogramVec
	position *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	head     prometheus.Gauge
	gaps     *prometheus.CounterVec
	active   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koers_projection_events_total",
			Help: "Event messages a projection's live applier handled, by outcome: applied, duplicate (at or below the checkpoint), unknown (type not handled), dead_letter (Apply failed, parked), malformed (no usable position).",
		}, []string{"projection", "outcome"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "koers_projection_batch_seconds",
			Help:    "Time to apply and commit one batch transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"projection"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koers_projection_position",
			Help: "Checkpoint of the projection's live generation: the last applied global store position.",
		}, []string{"projection"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koers_projection_lag_events",
			Help: "Position of the last event on the stream minus the projection's checkpoint.",
		}, []string{"projection"}),
		head: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koers_projection_stream_head_position",
			Help: "Global store position of the last event on the JetStream event stream, as last seen.",
		}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koers_projection_gaps_total",
			Help: "Times a projection found a gap after its checkpoint and went back to it.",
		}, []string{"projection"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koers_projection_active",
			Help: "1 while this process holds the projection's lease and applies events, 0 while it stands by.",
		}, []string{"projection"}),
	}
	for _, c := range []prometheus.Collector{m.events, m.batches, m.position, m.lag, m.head, m.gaps, m.active} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("projections: registering metrics: %w", err)
		}
	}
	return m, nil
}
