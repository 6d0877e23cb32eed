-- wrk script of bench/run.py: POST the payment payload of bench/common.py (PAYLOAD) as JSON.
-- With a script argument (`-- <prefix>`), every request carries a new Idempotency-Key,
-- <prefix>-<thread>-<n>: the "idem" scenario, where each request claims a key.
-- It also counts the requests each thread starts, so that run.py knows how many were still in
-- flight (sent, never answered) when wrk stopped: those may have been accepted all the same;
-- and it counts the answers by status, keeping one body of each status of 300 or more, so that
-- non-2xx answers can be explained. (Both cost wrk a few µs per request.)
wrk.method = "POST"
wrk.body = '{"status":"paid","amount":12.5,"order":{"id":"A1"}}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("number", #threads)
end

function init(args)
   sent = 0
   statuses = {}
   samples = {}
   prepared = wrk.format()
   if args[1] then
      keyed = args[1] .. "-" .. number .. "-"
   end
end

function request()
   sent = sent + 1
   if keyed then
      return wrk.format(nil, nil, {["Content-Type"] = "application/json",
                                   ["Idempotency-Key"] = keyed .. sent})
   end
   return prepared
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 300 and samples[status] == nil then
      samples[status] = string.sub(string.gsub(body or "", "%c", " "), 1, 200)
   end
end

function done(summary, latency, requests)
   local total = 0
   local counts = {}
   local bodies = {}
   for _, thread in ipairs(threads) do
      total = total + thread:get("sent")
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
      for status, body in pairs(thread:get("samples")) do
         bodies[status] = body
      end
   end
   io.write(string.format("bench: sent %d\n", total))
   for status, count in pairs(counts) do
      io.write(string.format("bench: status %d %d\n", status, count))
   end
   for status, body in pairs(bodies) do
      io.write(string.format("bench: sample %d %s\n", status, body))
   end
end
