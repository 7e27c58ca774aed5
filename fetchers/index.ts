/**
 * overseer/fetchers: the four release sources and the Fetcher contract for writing your own.
 * Importing this loads none of undici, the AWS SDK or Octokit; each loads at its fetcher's first fetch.
 */
export { HttpFetcher, type HttpFetcherOptions } from './http.js';
export { FileFetcher, type FileFetcherOptions } from './file.js';
export { S3Fetcher, type S3FetcherOptions, type S3Credentials } from './s3.js';
export { GitHubFetcher, type GitHubFetcherOptions, type AssetMatcher } from './github.js';
export type { FetchContext, Fetcher, FetchResult, Release, ReleaseWants } from '../src/upgrade/fetcher.js';
export { ManifestFetcher, type ManifestFetcherOptions, type ManifestStatus } from './manifest.js';
