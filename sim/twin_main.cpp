// Verilator harness of the simulation twin (lnsmadam.sim.twin).
//
// Runs a Verilated top with ports clk, rst, uart_rx (in), uart_tx (out) and optionally
// busy (out), and bridges its UART to the host over stdin/stdout with a tiny message
// protocol (all integers little-endian):
//
//   host -> harness                         harness -> host
//   'D' len:u16 data   bytes for uart_rx     'D' len:u16 data   bytes seen on uart_tx
//   'C'                counters request      'C' cycles rx_bytes tx_bytes frame_errors
//                                                busy_cycles (u64 each)
//   'T' n:u64          clock >= n cycles     'T' cycles:u64     when those cycles have run
//   'R' n:u32          assert rst n cycles
//   'Q'                quit (so does EOF)
//
// Bytes are serialised onto uart_rx as 8N1, LSB first, `divisor` clocks per bit, back to
// back; uart_tx is sampled in the middle of each bit. The model is clocked only while
// there is work: bytes queued or on either wire, a pending 'T', the design's busy output
// (if present), or within `linger` cycles of the last UART activity (the design's reply
// latency). Otherwise the harness sleeps in poll(), so an idle twin costs no CPU.
// Clocking runs in batches of `batch` cycles between polls of stdin.
//
// argv: divisor linger batch reset_cycles free_run

#include "Vtwin.h"
#include "verilated.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <poll.h>
#include <unistd.h>
#include <vector>

namespace {

void write_all(const uint8_t* p, size_t n) {
    while (n) {
        ssize_t w = ::write(1, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            std::exit(0);  // host went away
        }
        p += w;
        n -= size_t(w);
    }
}

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    for (int i = 0; i < 8; i++) out.push_back(uint8_t(v >> (8 * i)));
}

uint64_t get_le(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s divisor linger batch reset_cycles free_run\n", argv[0]);
        return 2;
    }
    const uint32_t divisor = uint32_t(std::strtoul(argv[1], nullptr, 10));
    const uint64_t linger = std::strtoull(argv[2], nullptr, 10);
    const uint64_t batch = std::strtoull(argv[3], nullptr, 10);
    uint64_t rst_left = std::strtoull(argv[4], nullptr, 10);
    const bool free_run = std::atoi(argv[5]) != 0;
    if (divisor < 2 || batch < 1) {
        std::fprintf(stderr, "twin: bad divisor %u or batch %llu\n", divisor,
                     (unsigned long long)batch);
        return 2;
    }

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(1, argv);
    auto top = std::make_unique<Vtwin>(ctx.get());

    // host -> device serialiser (uart_rx)
    std::vector<uint8_t> in_q;
    size_t in_head = 0;
    uint32_t rx_frame = 0, rx_bits = 0, rx_cnt = 0;
    uint8_t rx_line = 1;
    // device -> host deserialiser (uart_tx)
    enum { IDLE, START, DATA, STOP } tx_state = IDLE;
    uint32_t tx_cnt = 0, tx_bit = 0;
    uint8_t tx_byte = 0, tx_prev = 1;
    std::vector<uint8_t> out_bytes;
    // counters
    uint64_t cycles = 0, n_rx = 0, n_tx = 0, n_ferr = 0, n_busy = 0;
    uint64_t active_until = linger;  // the design may talk right after reset
    uint64_t run_until = 0;
    bool t_pending = false;

    std::vector<uint8_t> cmd;  // unparsed host messages
    size_t cmd_head = 0;
    std::vector<uint8_t> reply;
    uint8_t rbuf[65536];
    // uart_tx bytes go out before any counter reply that follows them
    auto flush_out = [&]() {
        for (size_t off = 0; off < out_bytes.size(); off += 65535) {
            size_t len = out_bytes.size() - off;
            if (len > 65535) len = 65535;
            reply.push_back('D');
            reply.push_back(uint8_t(len));
            reply.push_back(uint8_t(len >> 8));
            reply.insert(reply.end(), out_bytes.begin() + off, out_bytes.begin() + off + len);
        }
        out_bytes.clear();
    };

    top->clk = 0;
    top->rst = rst_left ? 1 : 0;
    top->uart_rx = 1;
    top->eval();

    for (;;) {
        bool busy = false;
#ifdef TWIN_HAS_BUSY
        busy = top->busy != 0;
#endif
        const bool wire_work = in_head < in_q.size() || rx_bits || rx_cnt || tx_state != IDLE;
        const bool work = free_run || wire_work || busy || rst_left || cycles < active_until ||
                          cycles < run_until;

        // --- host I/O ---------------------------------------------------------------
        struct pollfd pfd = {0, POLLIN, 0};
        int pr = ::poll(&pfd, 1, work ? 0 : -1);
        if (pr < 0 && errno != EINTR) return 1;
        if (pr > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = ::read(0, rbuf, sizeof rbuf);
            if (r < 0 && errno != EINTR && errno != EAGAIN) return 1;
            if (r == 0) break;  // EOF: host closed
            if (r > 0) cmd.insert(cmd.end(), rbuf, rbuf + r);
        }
        bool quit = false;
        for (;;) {
            size_t avail = cmd.size() - cmd_head;
            if (!avail) break;
            const uint8_t* m = cmd.data() + cmd_head;
            if (m[0] == 'D') {
                if (avail < 3) break;
                size_t len = size_t(get_le(m + 1, 2));
                if (avail < 3 + len) break;
                if (in_head == in_q.size()) {
                    in_q.clear();
                    in_head = 0;
                }
                in_q.insert(in_q.end(), m + 3, m + 3 + len);
                cmd_head += 3 + len;
            } else if (m[0] == 'C') {
                flush_out();
                reply.push_back('C');
                put_u64(reply, cycles);
                put_u64(reply, n_rx);
                put_u64(reply, n_tx);
                put_u64(reply, n_ferr);
                put_u64(reply, n_busy);
                cmd_head += 1;
            } else if (m[0] == 'T') {
                if (avail < 9) break;
                uint64_t until = cycles + get_le(m + 1, 8);
                if (until > run_until) run_until = until;
                t_pending = true;
                cmd_head += 9;
            } else if (m[0] == 'R') {
                if (avail < 5) break;
                rst_left += get_le(m + 1, 4);
                cmd_head += 5;
            } else if (m[0] == 'Q') {
                quit = true;
                break;
            } else {
                std::fprintf(stderr, "twin: unknown host message 0x%02x\n", m[0]);
                return 3;
            }
        }
        if (quit) break;
        if (cmd_head == cmd.size()) {
            cmd.clear();
            cmd_head = 0;
        }

        // --- clock a batch ------------------------------------------------------------
        if (work || in_head < in_q.size() || rst_left || cycles < run_until ||
            cycles < active_until) {
            uint64_t n = batch;
            if (run_until > cycles && run_until - cycles < n) n = run_until - cycles;
            for (uint64_t i = 0; i < n; i++) {
                // drive uart_rx for this cycle
                if (rx_cnt == 0) {
                    if (rx_bits == 0 && in_head < in_q.size() && !rst_left) {
                        rx_frame = 0x200u | (uint32_t(in_q[in_head++]) << 1);
                        rx_bits = 10;
                        n_rx++;
                    }
                    if (rx_bits) {
                        rx_line = rx_frame & 1;
                        rx_frame >>= 1;
                        rx_bits--;
                        rx_cnt = divisor;
                        active_until = cycles + linger;
                    } else {
                        rx_line = 1;
                    }
                }
                if (rx_cnt) rx_cnt--;
                top->uart_rx = rx_line;
                top->rst = rst_left ? 1 : 0;
                top->clk = 1;
                top->eval();
                top->clk = 0;
                top->eval();
                cycles++;
#ifdef TWIN_HAS_BUSY
                n_busy += top->busy & 1;
#endif
                if (rst_left) {
                    rst_left--;
                    tx_state = IDLE;
                    tx_prev = 1;
                    continue;
                }
                // sample uart_tx
                const uint8_t tx = top->uart_tx & 1;
                switch (tx_state) {
                    case IDLE:
                        if (!tx && tx_prev) {
                            tx_state = START;
                            tx_cnt = divisor / 2;
                        }
                        break;
                    case START:
                        if (--tx_cnt == 0) {
                            if (!tx) {
                                tx_state = DATA;
                                tx_bit = 0;
                                tx_byte = 0;
                                tx_cnt = divisor;
                            } else {
                                tx_state = IDLE;  // glitch, not a start bit
                            }
                        }
                        break;
                    case DATA:
                        if (--tx_cnt == 0) {
                            tx_byte |= uint8_t(tx << tx_bit);
                            tx_cnt = divisor;
                            if (++tx_bit == 8) tx_state = STOP;
                        }
                        break;
                    case STOP:
                        if (--tx_cnt == 0) {
                            if (tx) {
                                out_bytes.push_back(tx_byte);
                                n_tx++;
                            } else {
                                n_ferr++;
                            }
                            tx_state = IDLE;
                            active_until = cycles + linger;
                        }
                        break;
                }
                tx_prev = tx;
            }
        }

        // --- replies ------------------------------------------------------------------
        flush_out();
        if (t_pending && cycles >= run_until) {
            reply.push_back('T');
            put_u64(reply, cycles);
            t_pending = false;
        }
        if (!reply.empty()) {
            write_all(reply.data(), reply.size());
            reply.clear();
        }
    }
    top->final();
    return 0;
}
