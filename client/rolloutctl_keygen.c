/* rolloutctl keygen: a CURVE key pair for rolloutd or rollout-pool, as Z85 text. The secret
 * goes into the daemon's own config (rollout-pool: pool.curve_secret_key); the public key
 * goes to its peers (the pool's curve_allowed lists coordinators' public keys). */
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "rolloutctl.h"

int rolloutctl_keygen(int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: rolloutctl keygen\n");
		return 2;
	}
	if (!zmq_has("curve")) {
		fprintf(stderr, "rolloutctl: this libzmq has no CURVE support\n");
		return 1;
	}
	char pub[41], sec[41];
	if (zmq_curve_keypair(pub, sec) != 0) {
		perror("rolloutctl: zmq_curve_keypair");
		return 1;
	}
	printf("public_key: \"%s\"\nsecret_key: \"%s\"\n", pub, sec);
	return 0;
}
