/* The real-time interval timer: alarm and setitimer deliver SIGALRM to a handler while the
 * program computes, while it sleeps (nanosleep ends early with EINTR and the time left) and
 * while it waits in pause; a periodic timer ticks repeatedly; with the default action SIGALRM
 * ends the process (exit status 142). */
#include "nolibc.h"

#define SIGALRM 14
struct tv { long s, us; };
struct itv { struct tv interval, value; };
struct ts { long s, ns; };
static volatile int ticks;
static void on_alarm(int sig) { (void)sig; ticks++; }

int main(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    sigaction_k(SIGALRM, on_alarm, 0);
    show("alarm none before", sys3(37, 5, 0, 0));
    show("alarm left", sys3(37, 0, 0, 0));

    /* a one-shot 30 ms timer fires while the program computes */
    struct itv t = {{0, 0}, {0, 30000}};
    show("setitimer", sys3(38, 0, &t, 0));
    struct itv cur;
    sys3(36, 0, &cur, 0);
    show("getitimer armed", cur.value.s == 0 && cur.value.us > 0 && cur.value.us <= 30000);
    volatile u64 spin = 0;
    while (!ticks) spin++;
    show("fired during computation", ticks);
    sys3(36, 0, &cur, 0);
    show("disarmed after one shot", cur.value.s + cur.value.us);

    /* it interrupts a long sleep */
    t.value.us = 20000;
    sys3(38, 0, &t, 0);
    struct ts nap = {5, 0}, rem = {0, 0};
    show("nanosleep interrupted", sys3(35, &nap, &rem, 0));
    show("time left reported", rem.s >= 4);
    show("ticks", ticks);

    /* a periodic timer wakes pause three times */
    struct itv per = {{0, 10000}, {0, 10000}};
    sys3(38, 0, &per, 0);
    for (int i = 0; i < 3; i++) show("pause", sys3(34, 0, 0, 0));
    struct itv off = {{0, 0}, {0, 0}}, old;
    sys3(38, 0, &off, &old);
    /* At least the three that woke pause: on a loaded host (or under an emulator) the process can
     * be descheduled for a whole period before the timer is disarmed, so one more may arrive. */
    show("ticks after periodic", ticks >= 5);
    show("old interval", old.interval.us);
    show("bad which", sys3(38, 7, &off, 0));

    /* default action: the process ends */
    sigaction_k(SIGALRM, 0, 0);
    t.value.us = 10000;
    sys3(38, 0, &t, 0);
    put("waiting for the end\n");
    for (;;) spin++;
}
