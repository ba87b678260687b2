package shim

import (
	"encoding/json"
	"errors"
	"fmt"
)

// iperfReport is the part of `iperf3 -J` output the benchmark reads.
type iperfReport struct {
	End struct {
		SumSent struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			Seconds       float64 `json:"seconds"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperfGbits returns the receiver's rate in Gbit/s from an iperf3
// -J report (sum_received: what actually arrived, in either direction).
func parseIperfGbits(out []byte) (float64, error) {
	var r iperfReport
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("iperf3 JSON: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("iperf3: no bits received")
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}
