// The kinds of the options that load the frontend's placement (cli/option-kinds.ts has the
// others): a rules file and a vulnerability feed, each read and checked by the code that uses it
// afterwards. Apart so that the domain commands, which take neither, do not load the placement.
import { RulesEngine } from '../frontend/placement/rules-engine.js'
import { VulnerabilityFeed } from '../frontend/placement/vulnerability-feed.js'
import { file } from './options.js'

/** A rules file (docs/rules.md), read and checked. */
export const rulesFile = file('a rules file (JSON, docs/rules.md)', (p) => RulesEngine.fromFile(p))
const FEED = 'a vulnerability feed (a JSON file or a directory of them: the operator\'s format, OSV records, a Debian Security Tracker export; docs/vulnerability-feed.md)'
/** A vulnerability feed (docs/vulnerability-feed.md), read and checked. */
export const feedFile = file(FEED, (p) => VulnerabilityFeed.fromFile(p, false), { directory: true })
/** The same, re-read when a file changes (a long-running command: `metaos up`). */
export const watchedFeedFile = file(FEED, (p) => VulnerabilityFeed.fromFile(p), { directory: true })
