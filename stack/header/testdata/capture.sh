set -x
S=$RANDOM
A=npa$S; B=npb$S
ip netns add $A; ip netns add $B
trap "ip netns del $A; ip netns del $B" EXIT
ip link add npva$S netns $A type veth peer name npvb$S netns $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A addr add 10.213.0.1/24 dev npva$S; ip -n $B addr add 10.213.0.2/24 dev npvb$S
ip -n $A addr add fd00:213::1/64 dev npva$S nodad; ip -n $B addr add fd00:213::2/64 dev npvb$S nodad
ip -n $A link set npva$S up; ip -n $B link set npvb$S up
ip netns exec $A ethtool -K npva$S tx off rx off
ip netns exec $B ethtool -K npvb$S tx off rx off
ip netns exec $A tcpdump -i npva$S -w /tmp/hx/cap.pcap -U >/dev/null 2>&1 &
TP=$!
sleep 1
ip netns exec $B python3 -c '
import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(("10.213.0.2",5001)); s.listen()
s6=socket.socket(socket.AF_INET6); s6.bind(("fd00:213::2",5002)); s6.listen()
time.sleep(4)' &
sleep 0.5
ip netns exec $A ping -c1 -W1 10.213.0.2
ip netns exec $A ping -6 -c1 -W1 fd00:213::2
ip netns exec $A python3 -c '
import socket
c=socket.create_connection(("10.213.0.2",5001)); c.send(b"hello"); c.close()
c=socket.create_connection(("fd00:213::2",5002)); c.close()
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.sendto(b"udp!",("10.213.0.2",5003))
u=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM); u.sendto(b"udp6",("fd00:213::2",5003))
'
sleep 1
kill $TP; wait $TP
