/*
 * ctlclient.c: arceusctl's side of control.sock (stub until ctlsock.c).
 */
#include <stdio.h>

#include "control.h"

int
ctl_query(const char *sock, const char *what, int json)
{
	(void)json;
	fprintf(stderr, "arceusctl: %s: cannot reach arceus-control at %s\n",
	    what, sock);
	return 1;
}
