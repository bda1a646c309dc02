/*
 * http.c: the operators' HTTP port (libmicrohttpd, its own thread):
 *   /metrics       Prometheus text
 *   /api/status    this node and the cluster, JSON
 *   /api/members   members and their health, JSON
 *   /api/plan      the plan in force, JSON
 *   /api/links     the link matrix (every node's row) and islands, JSON
 *   /api/train     the loss and throughput history, JSON
 *   /              the dashboard: one page, no external resource
 * Handlers take c->mu only while they render.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "control.h"
#include "log.h"

static const char dashboard[] =
"<!DOCTYPE html>\n"
"<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<title>Arceus</title>\n"
"<style>\n"
"body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\n"
"h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.05em;margin:1.2em 0 .4em}\n"
"table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}\n"
".alive{color:#1a7f37}.suspect{color:#b7791f}.dead{color:#c62828}.left{color:#777}\n"
"#summary span{margin-right:1.5em}svg{background:#fff;border:1px solid #ddd}\n"
"</style></head><body>\n"
"<h1>Arceus <span id=\"node\">&hellip;</span></h1>\n"
"<div id=\"summary\"><span>epoch <b id=\"epoch\">-</b></span>"
"<span>role <b id=\"role\">-</b></span>"
"<span>members <b id=\"alive\">-</b> alive, <b id=\"suspect\">-</b> suspect, "
"<b id=\"dead\">-</b> dead</span>"
"<span>dropped <b id=\"dropped\">-</b></span>"
"<span>dataplane <b id=\"dp\">-</b></span></div>\n"
"<h2>Members</h2>\n"
"<table id=\"members\"><thead><tr><th>id</th><th>address</th><th>state</th>"
"<th>incarnation</th><th>RTT ms</th><th>GEMM GFLOP/s</th>"
"<th>training GFLOP/s</th></tr></thead><tbody></tbody></table>\n"
"<h2>Plan</h2><pre id=\"plan\">-</pre>\n"
"<h2>Training</h2>\n"
"<div>step <b id=\"step\">-</b>, loss <b id=\"loss\">-</b>, "
"<b id=\"tps\">-</b> tokens/s</div>\n"
"<div><span style=\"color:#1565c0\">&#9472; loss</span> "
"<span style=\"color:#2e7d32\">- - tokens/s</span></div>\n"
"<svg id=\"curve\" width=\"640\" height=\"200\" viewBox=\"0 0 640 200\">"
"<path id=\"losspath\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" d=\"\"/>"
"<path id=\"tpspath\" fill=\"none\" stroke=\"#2e7d32\" stroke-width=\"1\" stroke-dasharray=\"4 3\" d=\"\"/>"
"</svg>\n"
"<p id=\"error\" class=\"dead\"></p>\n"
"<script>\n"
"'use strict';\n"
"function $(id){return document.getElementById(id);}\n"
"async function get(u){const r=await fetch(u,{cache:'no-store'});"
"if(!r.ok)throw new Error(u+': '+r.status);return r.json();}\n"
"function cell(tr,t,cls){const td=document.createElement('td');td.textContent=t;"
"if(cls)td.className=cls;tr.appendChild(td);}\n"
"async function tick(){try{\n"
" const s=await get('/api/status');\n"
" $('node').textContent=s.node_id+' ('+s.name+')';\n"
" $('epoch').textContent=s.epoch;$('role').textContent=s.role;\n"
" $('alive').textContent=s.members.alive;$('suspect').textContent=s.members.suspect;\n"
" $('dead').textContent=s.members.dead;\n"
" $('dropped').textContent=s.gossip.bad_mac+s.gossip.replayed+s.gossip.malformed;\n"
" const L=s.dataplane.links;$('dp').textContent=s.dataplane.up?(s.dataplane.backend+', '+"
"L.filter(l=>l.up).length+'/'+L.length+' links up'):'down';\n"
" const m=await get('/api/members');const tb=$('members').tBodies[0];\n"
" tb.textContent='';\n"
" for(const x of m){const tr=document.createElement('tr');tr.dataset.id=x.id;"
"tr.dataset.state=x.state;cell(tr,x.id+(x.self?' (self)':''));cell(tr,x.addr+':'+x.gossip_port);"
"cell(tr,x.state,x.state);cell(tr,x.incarnation);cell(tr,x.rtt_ms.toFixed(2));"
"cell(tr,x.gflops.toFixed(1));cell(tr,x.train_gflops?x.train_gflops.toFixed(1):'-');"
"tb.appendChild(tr);}\n"
" const p=await get('/api/plan');\n"
" $('plan').textContent=p.text?p.text:('none: '+p.why);$('plan').dataset.ok=p.ok?'1':'0';\n"
" if(s.train){$('step').textContent=s.train.step;$('loss').textContent=s.train.loss.toFixed(4);"
"$('tps').textContent=Math.round(s.train.tokens_per_s);}\n"
" const t=await get('/api/train');const pts=t.points;\n"
" function curve(id,k){let lo=Infinity,hi=-Infinity;for(const q of pts){lo=Math.min(lo,q[k]);hi=Math.max(hi,q[k]);}\n"
"  if(hi==lo)hi=lo+1;const s0=pts[0][0],s1=pts[pts.length-1][0];\n"
"  let d='';pts.forEach((q,i)=>{const x=(s1==s0?0:(q[0]-s0)/(s1-s0))*630+5,"
"y=195-(q[k]-lo)/(hi-lo)*190;d+=(i?'L':'M')+x.toFixed(1)+' '+y.toFixed(1);});\n"
"  $(id).setAttribute('d',d);$(id).dataset.points=pts.length;}\n"
" if(pts.length>1){curve('losspath',1);curve('tpspath',2);}\n"
" $('error').textContent='';document.body.dataset.ready='1';\n"
"}catch(e){$('error').textContent=String(e);}}\n"
"tick();setInterval(tick,1000);\n"
"</script></body></html>\n";

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *type,
    struct sbuf *b)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (b->oom) {
		sbuf_free(b);
		return MHD_NO;
	}
	r = MHD_create_response_from_buffer(b->len, b->s ? b->s : (void *)"",
	    b->s ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		sbuf_free(b);
		return MHD_NO;
	}
	b->s = NULL;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct ctl *c = cls;
	struct sbuf b;
	const char *type = "application/json";
	unsigned status = MHD_HTTP_OK;

	(void)version;
	(void)upload;
	(void)con_cls;
	memset(&b, 0, sizeof(b));
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		sbuf_printf(&b, "{\"error\":\"method not allowed\"}\n");
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, type, &b);
	}
	if (*upload_size != 0)
		return MHD_NO;
	if (strcmp(url, "/") == 0) {
		sbuf_printf(&b, "%s", dashboard);
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &b);
	}
	pthread_mutex_lock(&c->mu);
	if (strcmp(url, "/metrics") == 0) {
		report_metrics(c, &b);
		type = "text/plain; version=0.0.4";
	} else if (strcmp(url, "/api/status") == 0) {
		report_status(c, &b, 1);
	} else if (strcmp(url, "/api/members") == 0) {
		report_members(c, &b, 1);
	} else if (strcmp(url, "/api/plan") == 0) {
		report_plan(c, &b, 1);
	} else if (strcmp(url, "/api/links") == 0) {
		report_links(c, &b, 1);
	} else if (strcmp(url, "/api/train") == 0) {
		report_train(c, &b);
	} else {
		status = MHD_HTTP_NOT_FOUND;
		sbuf_printf(&b, "{\"error\":\"not found\"}");
	}
	pthread_mutex_unlock(&c->mu);
	if (strcmp(type, "application/json") == 0)
		sbuf_printf(&b, "\n");
	return reply(conn, status, type, &b);
}

int
http_start(struct ctl *c, const char *addr, int port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -EINVAL;
	c->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handler, c,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_END);
	return c->http ? 0 : -EADDRINUSE;
}

void
http_stop(struct ctl *c)
{
	if (c->http != NULL)
		MHD_stop_daemon(c->http);
	c->http = NULL;
}
