// The one request handler every contender serves: a few bytes naming the process that answered.
'use strict';
const body = `${process.pid}\n`;
module.exports = (request, response) => response.end(body);
