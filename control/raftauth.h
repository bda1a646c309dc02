/*
 * raftauth.h: libraft's TCP transport behind a mutual proof of the
 * cluster key on every connection (raftauth.c has the protocol).
 */
#ifndef ARC_RAFTAUTH_H
#define ARC_RAFTAUTH_H

#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define RAFT_AUTH_KEY_LEN	32

struct hs;

struct raft_auth {
	struct raft_uv_transport t;	/* give this one to raft_uv_init */
	struct raft_uv_transport inner;	/* raft_uv_tcp */
	struct raft_uv_transport *outer;	/* == &t */
	uv_loop_t	*loop;
	unsigned char	 key[RAFT_AUTH_KEY_LEN];
	raft_id		 id;
	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb close_cb;
	struct hs	*hs;		/* handshakes in progress */
	int		 closing;
	struct {
		uint64_t ok;		/* connections authenticated */
		uint64_t refused;	/* wrong key, garbage, timeout */
	} stats;
};

/* @return 0 or a RAFT_* error. */
int	raft_auth_init(struct raft_auth *a, uv_loop_t *loop,
	    const unsigned char key[RAFT_AUTH_KEY_LEN]);
/* After raft_close's callback and raft_uv_close(). */
void	raft_auth_fini(struct raft_auth *a);

#endif /* ARC_RAFTAUTH_H */
