package seccomp

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Evaluate runs a seccomp program the way the kernel would for data and
// returns the filter's return value. It supports the classic-BPF subset a
// seccomp filter typically uses (LD W ABS, LD/LDX IMM, TAX/TXA, ALU with K,
// JMP with K, RET K/A) and errors on anything else, so tests and the stage
// can check what a program decides without installing it.
func Evaluate(prog []unix.SockFilter, data *SeccompData) (uint32, error) {
	var raw [64]byte
	binary.LittleEndian.PutUint32(raw[0:], uint32(data.Nr))
	binary.LittleEndian.PutUint32(raw[4:], data.Arch)
	binary.LittleEndian.PutUint64(raw[8:], data.InstructionPointer)
	for i, a := range data.Args {
		binary.LittleEndian.PutUint64(raw[16+8*i:], a)
	}
	var acc, x uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if ins.K%4 != 0 || ins.K+4 > uint32(len(raw)) {
				return 0, fmt.Errorf("bpf %d: load out of seccomp_data: %d", pc, ins.K)
			}
			acc = binary.LittleEndian.Uint32(raw[ins.K:])
		case unix.BPF_LD | unix.BPF_IMM:
			acc = ins.K
		case unix.BPF_LDX | unix.BPF_IMM:
			x = ins.K
		case unix.BPF_MISC | unix.BPF_TAX:
			x = acc
		case unix.BPF_MISC | unix.BPF_TXA:
			acc = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= ins.K
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			acc |= ins.K
		case unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K:
			acc >>= ins.K
		case unix.BPF_ALU | unix.BPF_LSH | unix.BPF_K:
			acc <<= ins.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(ins.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var cond bool
			switch ins.Code & 0xf0 {
			case unix.BPF_JEQ:
				cond = acc == ins.K
			case unix.BPF_JGT:
				cond = acc > ins.K
			case unix.BPF_JGE:
				cond = acc >= ins.K
			case unix.BPF_JSET:
				cond = acc&ins.K != 0
			}
			if cond {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return ins.K, nil
		case unix.BPF_RET | unix.BPF_A:
			return acc, nil
		default:
			return 0, fmt.Errorf("bpf %d: unsupported instruction %#x", pc, ins.Code)
		}
	}
	return 0, fmt.Errorf("bpf: program ran off its end")
}

// Disassemble renders a program one instruction per line, e.g.
// "0004: jge #0x40000000 jt 5 jf 6", with return values named
// ("ret USER_NOTIF"). Meant for tests and debugging.
func Disassemble(prog []unix.SockFilter) string {
	var b strings.Builder
	for pc, ins := range prog {
		fmt.Fprintf(&b, "%04d: ", pc)
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			fmt.Fprintf(&b, "ld [%d]%s", ins.K, fieldName(ins.K))
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			fmt.Fprintf(&b, "and #%#x", ins.K)
		case unix.BPF_JMP | unix.BPF_JA:
			fmt.Fprintf(&b, "ja %d", pc+1+int(ins.K))
		case unix.BPF_RET | unix.BPF_K:
			fmt.Fprintf(&b, "ret %s", RetString(ins.K))
		default:
			if ins.Code&0x07 == unix.BPF_JMP {
				op := map[uint16]string{unix.BPF_JEQ: "jeq", unix.BPF_JGT: "jgt", unix.BPF_JGE: "jge", unix.BPF_JSET: "jset"}[ins.Code&0xf0]
				if op != "" {
					fmt.Fprintf(&b, "%s #%#x jt %d jf %d", op, ins.K, pc+1+int(ins.Jt), pc+1+int(ins.Jf))
					break
				}
			}
			fmt.Fprintf(&b, "code=%#04x jt=%d jf=%d k=%#x", ins.Code, ins.Jt, ins.Jf, ins.K)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func fieldName(off uint32) string {
	switch {
	case off == offsetNr:
		return " nr"
	case off == offsetArch:
		return " arch"
	case off >= offsetArgs && off < 64:
		i := (off - offsetArgs) / 8
		if (off-offsetArgs)%8 == 0 {
			return fmt.Sprintf(" args[%d].lo", i)
		}
		return fmt.Sprintf(" args[%d].hi", i)
	}
	return ""
}
