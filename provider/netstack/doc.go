// Package netstack is the provider that serves a sandbox's sockets from
// the userspace stack (stack/node). Each socket is a stack socket
// (stack/socket) plus a conduit: a pair of sockets whose target end is
// injected into the sandboxed program as the socket's fd, so read, write,
// poll and epoll run natively. The provider pumps between its end and the
// stack socket, one goroutine per direction, 64 KiB per transfer, with
// back-pressure both ways: a full TCP send buffer stops the
// conduit→stack pump, which fills the conduit and blocks the target's
// writes (or gives EAGAIN); a target that does not read blocks the
// stack→conduit pump, which fills the stack's receive buffer and closes
// TCP's window.
//
// TCP and UDP sockets get kernel conduits: both ends are kernel sockets
// of the socket's own protocol, on loopback in the provider's private
// network namespace (conduitnet.go), so every native call on the target's
// fd is answered by Linux's TCP or UDP itself ("TCP conduits",
// tcppair.go, tcplisten.go; "UDP conduits", udpconduit.go). Without that
// namespace (it needs CAP_SYS_ADMIN; IPv6 for AF_INET6), and for ICMP
// echo sockets, conduits are AF_UNIX socketpairs: SOCK_STREAM (4 MiB
// buffers) for streams, SOCK_SEQPACKET for datagrams, so that datagram
// boundaries, including empty datagrams, survive; the sections after
// "UDP conduits" describe them and what they cannot show.
//
// # TCP conduits
//
// The target end of a TCP socket is a kernel TCP socket of the conduit
// namespace; the provider mirrors the stack socket's life on it:
//   - Fresh, bound or after a failed connect: unconnected, so poll,
//     send (EPIPE, SIGPIPE) and recv (ENOTCONN) are Linux's own.
//   - Connect: the target end is connected in place (its open file, fd
//     numbers and epoll registrations stay) to a new our end through the
//     namespace's pair listener; on loopback that completes within the
//     connect. While the stack's handshake runs, the target end must
//     look like a socket in SYN_SENT: TCP_NOTSENT_LOWAT 1 and a few KiB
//     of filler close our end's small initial window (the pair listener
//     was made with tcp_rmem[1] 4096, so nothing is locked and window
//     scaling stays normal): no POLLOUT, writes block or give EAGAIN.
//     Once established, TCP_NOTSENT_LOWAT goes back to 0 and our end
//     discards exactly the filler. A refused or timed-out connect resets
//     the pair (SO_LINGER 0 on our end): poll shows ERR|HUP, SO_ERROR is
//     the stack's error.
//   - Accepted sockets get a connected pair at once.
//   - Listen: the target end itself listens (bound to its own loopback
//     address), so poll shows POLLIN only while one token connection
//     sits in its accept queue, which the provider keeps there exactly
//     while a connection can be accepted; send gives EPIPE, recv
//     ENOTCONN; shutdown(SHUT_RD) takes it to CLOSE (POLLOUT|POLLHUP)
//     and listen works again.
//   - Data, urgent bytes (MSG_OOB, SIOCATMARK, SO_OOBINLINE: our end keeps
//     urgent bytes in line and finds the mark with SIOCATMARK), half-close
//     (the target's FIN reaches our end after its last byte, the peer's
//     FIN is shutdown(SHUT_WR) of our end) and resets (SO_LINGER 0 close
//     of our end: the target reads what came before, then ECONNRESET; a
//     first write gives ECONNRESET without SIGPIPE; an RST after the
//     peer's FIN gives Linux's CLOSE_WAIT answer, EPIPE) are TCP's own.
//     The hop between the ends has TCP_NODELAY on: Nagle applies in the
//     stack, with the target's options.
//   - The target's close: once the provider dropped its copy of the
//     target end (ReleaseConduit), our end sees its FIN or RST;
//     sock_diag in the conduit namespace tells a closed target end
//     (orphan: inode 0, or gone) from one shut down both ways, also
//     later, by asking every 20 ms while the target half-closed. A
//     target end shut down both ways but not yet orphaned is asked again
//     for up to 20 ms: tcp_close sends its FIN before it orphans the
//     socket, and our end can take that FIN in between.
//   - Buffer sizes (tcpbuf.go): the program's SO_SNDBUF and SO_RCVBUF
//     are set on the target end too, and on our end for the hop of that
//     direction, so the conduit holds a few buffers of the program's
//     size, not megabytes of autotuned ones; the shim passes its copy of
//     the target's fd (SetSockOptWithConduit) once the provider released
//     its own. Accepted connections inherit the listener's sizes.
//   - SIOCOUTQ (outq.go) counts the target's bytes wherever they are on
//     the way to the stack, and when the peer is a socket of this
//     provider, 0 waits (bounded) until the peer's pump moved what it
//     acked into its conduit: acked means readable, as on Linux.
//
// What the conduit adds, measured in bench/shim: the kernel's TCP on
// loopback twice per byte. An RST from our end drops what our end had not
// yet sent to the target end (beyond the target's receive buffer).
//
// # UDP conduits
//
// The target end of a UDP socket is a kernel UDP socket, so every native
// call on it is answered by Linux's UDP itself; the provider keeps that
// socket's state in step with the stack socket's:
//   - bound only while the stack socket is bound, with port 0 so that
//     udp_disconnect unbinds it as it unbinds the socket; our end is then
//     connected to it. A native send on an unbound, unconnected socket
//     autobinds it before failing with EDESTADDRREQ (inet_sendmsg): the
//     next served call (getsockname, bind, connect, sendto) finds the
//     target end bound and autobinds the stack socket too, on the
//     address it kept;
//   - connected to our end exactly while the stack socket is connected:
//     native writes on an unconnected socket fail with EDESTADDRREQ, and
//     connect(AF_UNSPEC) dissolves it (c-udp-af-unspec-disconnect,
//     u-edestaddrreq);
//   - shut down as the stack socket is, so a MSG_DONTWAIT recv after
//     SHUT_RD gives EAGAIN, a blocking one 0, and a send after SHUT_WR
//     EPIPE (u-shutdown);
//   - an ICMP error the stack socket gets while connected is moved to it
//     (moveDgramError): the provider sends the matching ICMP error on the
//     namespace's loopback, quoting a datagram of the pair, and the kernel
//     sets the socket error, so native recv and send report ECONNREFUSED
//     once and poll shows POLLERR (u-econnrefused-connected,
//     r-udp-connected-refused). Errors that are not injected stay with
//     the provider for SO_ERROR and the served recvfrom/recvmsg: those no
//     ICMP error makes Linux's UDP report without IP_RECVERR, and
//     EMSGSIZE (a fragmentation-needed or packet-too-big would also set
//     a path MTU in the conduit namespace).
//
// Before a served connect or sendto on a connected socket, before
// shutdown(SHUT_WR) and before the last close, the provider waits
// (bounded, 2 s) until the up pump sent the datagrams the target wrote
// before: on Linux they left with the old association. It waits until
// our end is empty, so while another thread of the target keeps writing
// it may wait the whole bound.
//
// # Linux semantics through an AF_UNIX stream conduit (fallback)
//
//   - Unconnected stream sockets: socket() injects an AF_UNIX
//     SOCK_STREAM socket that is not connected. It is in TCP_CLOSE, so
//     unix_poll shows POLLOUT|POLLHUP, as tcp_poll does for a fresh,
//     bound or failed TCP socket. Connect and listen connect that same
//     socket in place (join): an AF_UNIX socket made by join (not at
//     socket() time, so a socket that never connects costs no more)
//     and autobound (an abstract name of the same network namespace)
//     listens, accepts the connection (checked by
//     SO_PEERCRED: other processes of the provider's namespace can see
//     the name; their connections are accepted and closed while the
//     target end connects, so they cannot keep the queue full, and join
//     gives up after a bound) and closes; the accepted socket is our
//     end. The descriptor accept needs is reserved first, so a join that
//     fails for want of descriptors (EMFILE) leaves the target end
//     unconnected; a listen whose join fails is undone (CLOSE again, as
//     Linux after a failed listen) and may be retried. The open
//     file does not change, so the target's fd number, its dups and its
//     epoll registrations (nginx adds a socket to epoll before
//     connecting) stay valid. A non-blocking connect joins (and
//     fills, below) as soon as the handshake started; a blocking one
//     keeps the target end unconnected until the outcome: joined on
//     success, left unconnected on failure (ECONNREFUSED, ETIMEDOUT,
//     ...), so the socket polls POLLOUT|POLLHUP and can connect again,
//     as Linux's after tcp_disconnect. A blocking connect interrupted by
//     a signal joins and fills like a non-blocking one, since the
//     handshake goes on. Accepted sockets and datagram sockets get a
//     connected socketpair at once.
//   - EOF and half-close: the target's shutdown(SHUT_WR) (natively, or
//     through the shim's Shutdown, which shuts our end's reading so the
//     target end gets SEND_SHUTDOWN and needs no copy of it) is EOF on our
//     end after its last byte: the pump then sends FIN. The peer's FIN,
//     after the last byte, becomes shutdown(SHUT_WR) of our end: the
//     target reads 0 and can still write.
//   - Non-blocking connect: a connected AF_UNIX end is always writable,
//     but Linux shows POLLOUT only when the handshake is done. Connect
//     shrinks the target end's send buffer and fills it with filler bytes
//     (unix_writable depends on the sender's own sk_wmem_alloc), so the
//     target sees no POLLOUT and its writes block or give EAGAIN, as in
//     SYN_SENT; when the handshake completes the buffer is restored and
//     exactly the filler is discarded before pumping. Listen fills the
//     target end the same way (a listener never shows POLLOUT).
//   - Failed non-blocking connect (refused, timed out), peer RST: our
//     end is closed with unread data in its receive queue, which makes
//     unix_release_sock set ECONNRESET on the target end: poll shows
//     POLLIN|POLLOUT|POLLERR|POLLHUP|POLLRDHUP like tcp_poll after a
//     reset, data already delivered is read first, then read returns
//     ECONNRESET once and 0 after, and writes return EPIPE with SIGPIPE
//     unless MSG_NOSIGNAL. The unread data is always there: the
//     conduit→stack pump never empties our receive queue but leaves the
//     last byte it sent (copied with MSG_PEEK) queued as a sentinel (see
//     upRead); before the first data it is the last filler byte or a
//     byte written through the target end. SO_ERROR (GetSockOpt) returns
//     the stack's error (ECONNREFUSED, ETIMEDOUT, ECONNRESET) once and
//     clears the conduit's, unless the target already read it.
//   - Listener readiness: one token byte sits in the target end's receive
//     queue exactly while a connection can be accepted (see listenState),
//     so poll, select and epoll on a listening fd show POLLIN as on Linux.
//     A connection taken while the target was interrupted is kept in a
//     pending slot and returned first (also Requeue).
//   - Datagram sources: the pump records (source, length, hash) of each
//     datagram it puts in the conduit; RecvFrom reads the datagram from
//     the provider's copy of the target end and pairs it with its record,
//     skipping records of datagrams the target consumed with plain
//     read(2), which does not trap.
//   - Datagram control messages: the pump also keeps each datagram's
//     TTL (hop limit), TOS (traffic class), destination, interface and
//     receive time (stack/dgram.RecvInfo, read with dgram.ControlReader,
//     which leaves the stack's pending error in place). RecvMsg writes
//     the control messages recvmsg writes on Linux for the options the
//     socket has at the time of the call (IP_PKTINFO, IP_TTL, IP_TOS,
//     IPV6_PKTINFO, IPV6_HOPLIMIT, IPV6_TCLASS, SCM_TIMESTAMP[NS][_NEW]),
//     in Linux's order and put_cmsg layout, cut with MSG_CTRUNC when the
//     buffer is short. The shim serves recvmsg when the program asks for
//     the source or while such an option is on (WantsControl); otherwise
//     a native recvmsg on the conduit returns no control messages, as
//     Linux does without the options.
//   - Urgent data (MSG_OOB): AF_UNIX stream sockets have their own
//     out-of-band byte (Linux 5.15+, CONFIG_AF_UNIX_OOB), designed after
//     TCP's, and the pumps carry the mark over (urgent.go). The peer's
//     urgent byte is read from the stack apart (tcp ReadRelay: the bytes
//     before the mark, then the urgent byte alone) and sent with MSG_OOB
//     on our end, so the target natively gets POLLPRI, recv(MSG_OOB)
//     (EINVAL when there is none or it was read, EINVAL under
//     SO_OOBINLINE), a normal read stopping at the mark and then skipping
//     the byte, SO_OOBINLINE (also applied to the target end by
//     SetSockOpt, and inherited from a listener), SIGURG to
//     the F_SETOWN owner (queue_oob sends it as tcp_check_urg does) and
//     a newer urgent byte turning the previous one into normal data. The
//     target's send(MSG_OOB) is native: our end has SO_OOBINLINE on,
//     POLLPRI there shows the byte, the pump reads up to it (SIOCATMARK)
//     and sends the bytes up to and including it with MSG_OOB, so TCP's
//     urgent pointer names it (spec 43). SIOCATMARK (Ioctl, IoctlWithConduit) is the
//     target end's; FIONREAD counts up to a pending mark as tcp_ioctl.
//   - Close: the shim's Close flushes the target's pending bytes into the
//     stack, then closes the stack socket (FIN, or RST under SO_LINGER 0);
//     with unread data left it sends RST at once, like tcp_close.
//
// # Loopback timing
//
// Linux's loopback delivery and RST processing run within the sender's
// system call; here lo is a queue drained by its own goroutine and the
// pumps are goroutines too. Where a served call can tell, it waits
// (bounded, settle.go) so the result is the same as on Linux:
//   - SendTo of a datagram socket that put frames on lo returns once lo
//     delivered them and every datagram pump the stack notified moved
//     its datagrams into its conduit (a pump whose conduit is full is
//     not waited for). So two sendto()s to this host are both readable
//     with MSG_DONTWAIT once poll saw the first (scenario u-msg-peek).
//   - A non-blocking connect whose SYN went out on lo returns EINPROGRESS
//     after the handshake's outcome, applied to the conduit: writable
//     after success, reset after a refusal, so poll and SO_ERROR agree
//     at once (scenarios c-refused-nonblocking*).
//   - Accept returns once the bytes already in the accepted connection's
//     receive queue are in its conduit (scenario k-data-before-accept).
//
// A native write on a connected datagram conduit, or on a stream, does
// not trap, so it still reaches lo and the peer's conduit asynchronously.
//
// # The provider's copy of the target end
//
// The provider keeps its own reference to the target end: it is needed
// to connect it in place (join), to fill it (connect, listen) and
// restore its buffer, to write the first
// sentinel of an accepted connection, to take the listener token back,
// to read datagrams for RecvFrom, and to clear SO_ERROR. While the
// provider holds it, the target's close(2) of its last fd is invisible
// (the file stays open), so the shim must call Close.
//
// ReleaseConduit (provider.ConduitReleaser) drops the copy of a stream
// socket once its connection is established (at once for an accepted
// one, after the handshake for a connecting one; asking earlier is
// remembered). From then on the provider sees the target's last close as
// EOF and POLLHUP on its end and closes the stack socket itself: FIN, or
// RST if the target left unread data (unix_release_sock reports that as
// ECONNRESET on our end). A target that shut down both directions shows
// the same POLLHUP on our end as a closed one; sock_diag tells them apart
// (the peer inode of a released end reads 0, see targetReleased), so the
// socket stays open, as a shut-down TCP socket does, until the target
// closes it. Resets, half-close and SO_ERROR keep working without the
// copy. What is lost: RecvFrom on the stream (the shim should let
// recvfrom/recvmsg on stream sockets run natively: the AF_UNIX conduit
// returns no address, like TCP), and the provider's own access to the
// target end. The shim makes up for the rest with a copy of the target's
// fd (pidfd_getfd), which it passes to SetSockOptWithConduit (timeouts,
// SO_OOBINLINE and buffer sizes reach the target end), to
// SockErrorWithConduit (SO_ERROR clears the conduit's error, so a reset's
// ECONNRESET is reported once, by read or by SO_ERROR) and to
// IoctlWithConduit (SIOCINQ counts the bytes in the target end).
// Listeners and datagram sockets ignore ReleaseConduit: the shim must
// Close them.
//
// # Known differences from Linux (AF_UNIX conduits)
//
//   - read(2) after a refused non-blocking connect, before SO_ERROR was
//     read, returns ECONNRESET (Linux: ECONNREFUSED, the pending sk_err);
//     after a timeout ETIMEDOUT likewise becomes ECONNRESET.
//   - write(2) as the first call after a peer RST returns EPIPE with
//     SIGPIPE (Linux returns the pending ECONNRESET without a signal, and
//     EPIPE only on the next write). read then write matches exactly.
//   - A connecting socket's fd is not writable, and a blocking write on
//     it waits (as on Linux). A listener's is not writable either, and a
//     write fails with EPIPE (our end stopped reading: the target end
//     has SEND_SHUTDOWN), but a read returns EAGAIN or the readiness
//     token byte (Linux: ENOTCONN).
//   - On a stream socket that is not connected (fresh, bound, or after a
//     failed blocking connect) the unconnected AF_UNIX end answers the
//     native calls: write and send fail with ENOTCONN and no SIGPIPE
//     (Linux: EPIPE and SIGPIPE), read and recv with EINVAL (Linux:
//     ENOTCONN). sendto and sendmsg with an address reach the stack and
//     give EPIPE as on Linux.
//   - While a blocking connect waits for the handshake, another thread
//     polling the fd sees the unconnected POLLOUT|POLLHUP (Linux, in
//     SYN_SENT: no events), and its writes fail with ENOTCONN (Linux:
//     they wait for the handshake).
//   - After a failed non-blocking connect (or a failed handshake that an
//     interrupted blocking connect left running) the conduit is reset
//     for good: a second connect on the same socket reaches the stack,
//     but the target's fd stays reset (Linux allows reconnecting a
//     socket whose connect failed; programs normally open a new socket).
//     A blocking connect that failed leaves the socket reusable.
//   - Write errors of datagram sockets written through the conduit
//     (ENETUNREACH, EMSGSIZE beyond the path MTU; EDESTADDRREQ on an
//     unconnected ICMP echo or SEQPACKET-conduit UDP socket) are lost:
//     the target's write(2) already succeeded.
//   - UDP conduits have no back-pressure between their ends: datagrams
//     the target writes faster than the stack sends them queue in our
//     end (4 MiB) and beyond that are dropped, as UDP drops them; a
//     SEQPACKET conduit blocks the writer instead.
//   - SEQPACKET conduits (ICMP echo sockets, and UDP without the conduit
//     namespace): ICMP errors on connected sockets stay pending in the
//     stack, where getsockopt(SO_ERROR) and a served recvfrom/recvmsg
//     report and clear them as on Linux; a native read/recv cannot (an
//     AF_UNIX socket's only error is the ECONNRESET of a peer closing
//     with unread data) and poll shows no POLLERR. A native write on an
//     unconnected socket succeeds, and after shutdown(SHUT_RD) a
//     MSG_DONTWAIT recv returns 0 (Linux UDP: EAGAIN).
//   - Datagram control messages: the receive time (SO_TIMESTAMP) is when
//     the stack queued the datagram, or when the pump took it if no
//     timestamp option was on then; IP_RECVOPTS and IP_RETOPTS never
//     give a message (the stack keeps no IP options). SO_TIMESTAMPING,
//     SO_RXQ_OVFL, IP_RECVORIGDSTADDR and the RFC 2292 options are not
//     implemented.
//   - FIONREAD/SIOCOUTQ (Ioctl) add the conduit's queues to the stack's;
//     FIONREAD counts the bytes in flight in the stack→conduit pump,
//     SIOCOUTQ not those in the conduit→stack one.
//   - Datagram sockets: FIONREAD is the size of the next datagram in
//     the target end, else the stack's next (on a UDP conduit a
//     zero-length datagram in the target end is passed over: SIOCINQ
//     says 0 for it); shutdown(SHUT_WR) first waits (bounded) until the
//     pump sent every datagram written before it.
//   - Stream poll masks the connected conduit cannot show: a listener
//     shut down with SHUT_RD (Linux disconnects it: POLLOUT|POLLHUP; the
//     conduit stays connected and filled: no events); an RST after the
//     peer's FIN is not reflected (the stack→conduit pump ended at the
//     FIN, and a conduit reset would turn the EOF the target reads into
//     ECONNRESET).
//   - RecvFrom pairs a datagram with its source by length and hash: two
//     identical datagrams from different sources, one consumed with
//     read(2), may be attributed to the wrong source. Concurrent reads of
//     the same socket from several target threads may race with it.
//   - The conduit adds its buffers to TCP's: the target can queue up to
//     the conduit's size beyond the TCP send buffer, and SO_SNDBUF and
//     SO_RCVBUF values do not limit the conduit.
//   - Urgent data through the conduit's AF_UNIX MSG_OOB (differential
//     test TestUrgentDataLikeLinux; semantics scenario
//     m-oob-without-urgent): an urgent byte next in line, alone or after
//     the bytes before the mark were read, and the emptied buffer an
//     urgent byte read with MSG_OOB leaves until the next read passes
//     it, poll POLLIN too (unix_poll counts every queued buffer; tcp_poll
//     does not count the urgent byte as readable). recv(MSG_OOB) into a
//     zero-length buffer returns 1 (TCP: 0 with MSG_TRUNC). An urgent
//     byte read with MSG_OOB whose mark a newer urgent byte moved before
//     a normal read passed it is not read again as data (TCP delivers
//     it inline: "abXcd"), and its emptied buffer stops the next read
//     ("ab", then "cd"). FIONREAD counts the whole queue when the target
//     read an urgent byte with MSG_OOB before reaching its mark (TCP:
//     the bytes up to the mark), and one byte too many while data is
//     queued after a normal read passed over an urgent byte not taken
//     (AF_UNIX in Linux 6.18 keeps counting the dropped byte). The mark
//     reaches the conduit with its byte: when a peer announces an urgent
//     pointer ahead of the byte, TCP shows it at once (SIGURG, SIOCATMARK
//     1 at the mark, recv(MSG_OOB) EAGAIN until the byte comes); through
//     the conduit nothing shows until the byte arrived (recv(MSG_OOB)
//     gives EINVAL before). Without CONFIG_AF_UNIX_OOB the peer's urgent
//     byte arrives inline and the target's send(MSG_OOB) fails with
//     EOPNOTSUPP.
//   - SO_RCVTIMEO/SO_SNDTIMEO are applied to the conduit (native reads
//     and writes time out, and fail with EINTR on a signal even under
//     SA_RESTART, sock_intr_errno), but are rounded by AF_UNIX, not TCP.
package netstack
