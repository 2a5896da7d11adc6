"""A plain scrapy-redis spider for arachne's sandbox shop (tests/redis_scrapy.rs).

Nothing here adapts Scrapy to arachne: the queue, dupefilter and serializer are
scrapy-redis's defaults (`PriorityQueue` on `<name>:requests`, `RFPDupeFilter` on
`<name>:dupefilter`, pickled `Request.to_dict()`). The spider does what arachne's spec in
the test does: follow every `<a href>` on the site, obey robots.txt, stop at depth 20, and
write an item (url, title, price) for each `/item/<n>` page, one JSON line per item.

    python sandbox_spider.py --name NAME --redis URL --out items.jsonl [--start URL] [--cluster]

`--start` seeds the crawl (deduplicated against the shared dupefilter like any request);
without it the spider only works off what is already queued. It ends when the shared
queue is empty and it has nothing in flight.

`--cluster`: URL is a node of a Redis Cluster. The settings a scrapy-redis user changes
for one (docs/redis.md, "Redis Cluster"): redis-py's `RedisCluster` as the client, the
keys hash-tagged as arachne's (`{NAME}:requests`, `{NAME}:dupefilter`), and a `FifoQueue`
(scrapy-redis's `PriorityQueue` pops in a MULTI that redis-py's cluster pipeline refuses).
"""

import argparse
import re

import scrapy
from scrapy.crawler import CrawlerProcess

ITEM_PAGE = re.compile(r"/item/\d+$")


class SandboxSpider(scrapy.Spider):
    name = "sandbox"  # replaced by --name: the crawl's name, so the keys are <name>:*

    def parse(self, response):
        if ITEM_PAGE.search(response.url):
            yield {
                "url": response.url,
                "title": (response.css("h1::text").get() or "").strip(),
                "price": (response.css(".price::text").get() or "").strip(),
            }
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--start", action="append", default=[])
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    cluster = {}
    if args.cluster:
        cluster = {
            "REDIS_PARAMS": {"redis_cls": "redis.cluster.RedisCluster"},
            "SCHEDULER_QUEUE_KEY": "{%(spider)s}:requests",
            "SCHEDULER_DUPEFILTER_KEY": "{%(spider)s}:dupefilter",
            "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.FifoQueue",
        }
    process = CrawlerProcess(
        settings={
            **cluster,
            # scrapy-redis, with its defaults (queue class, serializer, key names).
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "REDIS_URL": args.redis,
            # Keep the shared queue and dupefilter when this spider closes: arachne may
            # still be working on the crawl.
            "SCHEDULER_PERSIST": True,
            # What arachne's defaults are: robots.txt obeyed, depth 20.
            "ROBOTSTXT_OBEY": True,
            "DEPTH_LIMIT": 20,
            "FEEDS": {args.out: {"format": "jsonlines"}},
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "INFO",
        }
    )
    process.crawl(SandboxSpider, name=args.name, start_urls=args.start)
    process.start()


if __name__ == "__main__":
    main()
