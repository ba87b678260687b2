package tcp

import "time"

// Config holds the TCP sysctls of a network namespace (net.ipv4.tcp_*,
// net.core.somaxconn), with Linux's defaults.
type Config struct {
	SynRetries        int // tcp_syn_retries
	SynAckRetries     int // tcp_synack_retries
	Timestamps        bool
	WindowScaling     bool
	SACK              bool
	DSACK             bool
	ECN               int // tcp_ecn: 0 off, 1 request, 2 accept when asked (ECN bits are ignored)
	FinTimeout        time.Duration
	KeepaliveTime     time.Duration
	KeepaliveIntvl    time.Duration
	KeepaliveProbes   int
	MaxSynBacklog     int
	Somaxconn         int
	Syncookies        int // 0 off, 1 when the SYN queue overflows, 2 always
	RMem              [3]int
	WMem              [3]int
	CongestionControl string
	TwReuse           int // tcp_tw_reuse: 0 off, 1 on, 2 loopback only
	Retries1          int
	Retries2          int
	OrphanRetries     int // 0 means 8, as Linux
	ModerateRcvbuf    bool
	AdvWinScale       int
	InitCwnd          uint32
	MinRTO            time.Duration
	AbortOnOverflow   bool
	ChallengeAckLimit int // per second
	Autocorking       bool
	// RmemMax and WmemMax are net.core.rmem_max / wmem_max: the ceilings
	// of SO_RCVBUF and SO_SNDBUF.
	RmemMax, WmemMax int
}

// DefaultConfig returns Linux 6.x defaults.
func DefaultConfig() Config {
	return Config{
		SynRetries:        6,
		SynAckRetries:     5,
		Timestamps:        true,
		WindowScaling:     true,
		SACK:              true,
		DSACK:             true,
		ECN:               2,
		FinTimeout:        60 * time.Second,
		KeepaliveTime:     7200 * time.Second,
		KeepaliveIntvl:    75 * time.Second,
		KeepaliveProbes:   9,
		MaxSynBacklog:     4096,
		Somaxconn:         4096,
		Syncookies:        1,
		RMem:              [3]int{4096, 131072, 6291456},
		WMem:              [3]int{4096, 16384, 4194304},
		CongestionControl: "cubic",
		TwReuse:           2,
		Retries1:          3,
		Retries2:          15,
		OrphanRetries:     0,
		ModerateRcvbuf:    true,
		AdvWinScale:       1,
		InitCwnd:          10,
		MinRTO:            200 * time.Millisecond,
		AbortOnOverflow:   false,
		ChallengeAckLimit: 1000,
		Autocorking:       true,
		RmemMax:           212992,
		WmemMax:           212992,
	}
}

// Linux constants (include/net/tcp.h).
const (
	timeoutInit     = time.Second       // TCP_TIMEOUT_INIT
	rtoMax          = 120 * time.Second // TCP_RTO_MAX
	rtoMin          = 200 * time.Millisecond
	timeWaitLen     = 60 * time.Second // TCP_TIMEWAIT_LEN
	delackMin       = 40 * time.Millisecond
	delackMax       = 200 * time.Millisecond
	atoMin          = 40 * time.Millisecond
	mssDefault      = 536 // TCP_MSS_DEFAULT
	minMSS          = 88  // TCP_MIN_MSS
	maxWindow       = 65535
	maxWscale       = 14
	sockMinRcvbuf   = 2304 // SOCK_MIN_RCVBUF (2048 + skb overhead)
	sockMinSndbuf   = 4608 // SOCK_MIN_SNDBUF
	maxSynCookieAge = 2    // minutes
)
