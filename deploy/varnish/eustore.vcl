# Copyright (c) the eustore-plugin authors.  BSD-2-Clause; see COPYING.
#
# Varnish cache in front of an eustore image store: a public S3/Walrus bucket
# holding a JSON catalog (catalog, catalog.json), its detached signature
# (catalog.asc) and image tarballs (images/<16 hex>/<name>.tgz).
#
# Use this file unchanged.  Everything that depends on the site (where the
# bucket is, who may purge) lives in eustore-site.vcl, found on varnishd's
# vcl_path; start from eustore-site.vcl.example next to this file.  The site
# file defines:
#
#   backend default { ... }          the S3/Walrus/MinIO endpoint
#   acl eustore_purgers { ... }      the addresses allowed to send PURGE
#   sub eustore_backend_request { }  maps the client's URL (bereq.url) to
#                                    the object's path on the endpoint, and
#                                    sets the Host header it expects
#
# What it does, and why (deploy/README.md says more):
#
# - Only GET and HEAD are served, all from the cache; PURGE is accepted from
#   eustore_purgers.  The store is read-only and public: nothing else has a
#   reason to reach the bucket through the cache.
# - Every client gets the same anonymous object: cookies, Authorization,
#   query strings and the Host a client used play no part.
# - The catalog and its signature are cached for a minute, so a newly
#   published catalog shows within a minute even unpurged, and are served
#   stale for up to a day while the endpoint is down or failing.
# - Tarballs are cached for a week: they are content-addressed, so the bytes
#   at a URL never change.
# - Errors (4xx, 5xx) are cached for a few seconds only, so a file missing
#   because it was not published yet appears as soon as it is.
# - Range requests (eustore-install-image resumes downloads with them) are
#   answered from the whole cached object, and conditional requests
#   (If-None-Match, If-Modified-Since) get 304 from the cache: Varnish does
#   both itself for cached objects, so ETag and Last-Modified are kept.
# - Responses say X-Cache: HIT or MISS (and Age, as always).

vcl 4.1;

include "eustore-site.vcl";

sub vcl_recv {
    # A proxy may send an absolute URI; the cache key is the path alone.
    set req.url = regsub(req.url, "^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "");
    # A store's files are plain keys.  A query string would only be an S3
    # sub-resource (?acl, ?versionId, a listing) or a cache buster splitting
    # the cache, so it is dropped rather than passed on.
    set req.url = regsub(req.url, "\?.*$", "");
    if (req.url !~ "^/") {
        set req.url = "/" + req.url;
    }

    if (req.method == "PURGE") {
        if (client.ip !~ eustore_purgers) {
            return (synth(405, "Not allowed"));
        }
        return (purge);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        # Read-only: a write would reach the bucket unsigned at best.
        return (synth(405, "Method not allowed"));
    }

    # The store is public: credentials or cookies a client sends change
    # nothing, and Varnish's built-in rules would not cache such requests.
    unset req.http.Cookie;
    unset req.http.Authorization;
    return (hash);
}

sub vcl_hash {
    # One store per cache: the URL alone names an object, whatever host name
    # a client (or the publish command's PURGE) used to reach the cache.
    hash_data(req.url);
    return (lookup);
}

sub vcl_synth {
    if (resp.status == 405 && req.method != "PURGE") {
        set resp.http.Allow = "GET, HEAD";
    }
}

sub vcl_backend_fetch {
    # Once only: a retried fetch comes back here with bereq.url mapped.
    if (bereq.retries == 0) {
        call eustore_backend_request;
    }
}

sub vcl_backend_response {
    unset beresp.http.Set-Cookie;

    if (beresp.status >= 500 && bereq.is_bgfetch) {
        # Refreshing a stale object failed: keep serving the stale one
        # (within its grace) instead of replacing it with an error.
        return (abandon);
    }
    if (beresp.status >= 400) {
        # A file not published yet must appear as soon as it is; a few
        # seconds still spare the endpoint a burst of identical misses.
        set beresp.ttl = 5s;
        set beresp.grace = 0s;
        set beresp.keep = 0s;
        return (deliver);
    }

    if (bereq.url ~ "(?i)(/catalog|\.json)(\.asc)?$") {
        # Short: a publish without a purge shows within a minute.  Grace:
        # while the endpoint is down, a stale catalog beats none.  Keep:
        # after that, Varnish asks the endpoint with If-None-Match and a
        # 304 refreshes the copy it has.
        set beresp.ttl = 60s;
        set beresp.grace = 1d;
        set beresp.keep = 1d;
        set beresp.http.Cache-Control = "public, max-age=60";
    } elsif (bereq.url ~ "(?i)\.(tgz|tar\.gz)$") {
        # Content-addressed: what is at a tarball's URL never changes.
        set beresp.ttl = 7d;
        set beresp.grace = 1d;
        set beresp.http.Cache-Control = "public, max-age=604800";
    } else {
        set beresp.ttl = 10m;
        set beresp.grace = 1h;
    }
    # Not Varnish's built-in rules: they would refuse to cache an object an
    # endpoint marked private or no-cache, and a store's files are public.
    return (deliver);
}

sub vcl_backend_error {
    if (bereq.is_bgfetch) {
        # The endpoint is unreachable: keep the stale object, as above.
        return (abandon);
    }
    set beresp.ttl = 0s;
    set beresp.grace = 0s;
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
