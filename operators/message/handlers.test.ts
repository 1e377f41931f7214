import { messageHandlers } from './handlers.js';
import { leaderElectionSuite, messageSuite } from './message.suite.js';

messageSuite('handlers', messageHandlers);
leaderElectionSuite('handlers', messageHandlers);
